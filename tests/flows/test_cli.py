"""`ivr flow simulate` and `ivr flow test` as a supervisor runs them."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations.catalog import declared_registry
from ivr.cli import main
from ivr.config import REPO_ROOT, settings
from ivr.flows.checks import check_paths
from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store
from ivr.store.seed import seed

WEDNESDAY_10H = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))  # every team is open


@pytest.fixture(autouse=True)
async def seeded_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The simulator runs against the configured store: point it at a fresh one, seeded as of the moment
    the simulated calls happen (``--at``)."""
    url = await new_sqlite_store(tmp_path / "ivr.sqlite3")
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_VAR_DIR", str(tmp_path))
    settings.cache_clear()
    store = Store(url)
    try:
        await seed(store, now=WEDNESDAY_10H)
    finally:
        await store.aclose()
    yield
    settings.cache_clear()


def test_simulate_prints_what_the_caller_hears_in_portuguese(capsys: pytest.CaptureFixture[str]) -> None:
    status = main([
        "flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--caller", "3133334444", "--input", "2,11222333,3,2",
        "--at", "2026-11-25 10:00",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "IVR: Olá! Você ligou para a American Tower Fibra." in out
    assert "O protocolo deste atendimento é dois mil e" in out
    assert "caller (keys): 11222333" in out
    assert "reais" in out  # the overdue amount, said in words
    assert ": transfer:+553131958012" in out
    assert "path: greet > identify_by_caller > announce_protocol > mail_protocol_or_not > mail_protocol" in out
    assert "main_menu > billing" in out


def test_simulate_with_a_stated_queue_says_the_wait(capsys: pytest.CaptureFixture[str]) -> None:
    status = main([
        "flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--input", "0", "--at", "2026-11-25 10:00",
        "--queue-state", "technical:waiting=1,agents=2,talk_s=300",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "IVR: O tempo estimado de espera é de cerca de cinco minutos." in out
    assert "[queue] technical: answered" in out


def test_simulate_refuses_a_queue_state_it_cannot_read(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--queue-state", "technical:fila=3"])
    assert status == 2
    assert "'fila=3' is not a queue's state" in capsys.readouterr().err


def test_simulate_refuses_a_moment_it_cannot_read(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--input", "0", "--at", "amanhã"])
    assert status == 2
    assert "ivr flow simulate: --at: 'amanhã' is not a date and time like 2026-12-24 21:00" in capsys.readouterr().err


def test_simulate_refuses_an_action_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--input", "1,press nine"])
    assert status == 2
    assert "'press nine' is not a caller action" in capsys.readouterr().err


def test_flow_test_reports_each_case_with_its_seconds_of_audio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    assert main(["flow", "test"]) == 0
    out = capsys.readouterr().out
    case = "J18 a withheld caller hears 0 first and reaches a person without keying any data"
    assert re.search(rf"^flows/tests/sac.yaml\n(  .*\n)*  ok    \( *\d+\.\d s\)  {case}$", out, re.MULTILINE), out
    assert "seconds unknown" not in out
    assert " 0 failed" in out


def test_flow_test_with_no_argument_tests_the_checkout_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flows" / "tests").mkdir(parents=True)
    (tmp_path / "flows" / "tests" / "mine.yaml").write_text(
        f"flow: {REPO_ROOT / 'flows/sac.yaml'}\n"
        "cases:\n"
        "  - {name: a withheld caller hangs up at once, caller: null, inputs: [hangup], expect: {outcome: hangup}}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    assert main(["flow", "test"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flows/tests/mine.yaml\n") and "a withheld caller hangs up at once" in out
    assert out.endswith("1 passed, 0 failed\n")  # this checkout's one case, not the installed flows' tests


def test_flow_test_outside_a_checkout_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["flow", "test"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"ivr flow test: no ./flows/tests in {tmp_path}; run it at the top of a checkout or name the test files\n"
    )


def seconds_case(tmp_path: Path, max_seconds: float) -> Path:
    case = tmp_path / "short.yaml"
    case.write_text(
        f"flow: {REPO_ROOT / 'flows/sac.yaml'}\n"
        "at: '2026-11-25 10:00'\n"
        "cases:\n"
        "  - name: a known caller goes straight to a person\n"
        "    caller: '3133334444'\n"
        "    inputs: ['0']\n"
        f"    expect: {{outcome: 'queue:technical', max_seconds: {max_seconds}}}\n",
        encoding="utf-8",
    )
    return case


def test_a_case_over_its_max_seconds_fails_with_the_seconds_it_took(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flow", "test", str(seconds_case(tmp_path, 1))]) == 1
    out = capsys.readouterr().out
    took = re.search(r"FAIL  \( *(\d+\.\d) s\)  a known caller goes straight to a person", out)
    assert took is not None and float(took[1]) > 1, out
    assert f"max_seconds: took {took[1]} s of audio, more than 1\n" in out


def test_a_case_within_its_max_seconds_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "test", str(seconds_case(tmp_path, 600))]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out


def catalogue_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The prompt texts alone, as settings' prompts dir: no audio built for them."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for text in settings().prompts_dir.glob("*.yaml"):
        shutil.copy(text, prompts)
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(prompts))
    settings.cache_clear()
    return prompts


def test_without_built_audio_the_seconds_are_unknown_and_max_seconds_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = seconds_case(tmp_path, 40)
    catalogue_copy(tmp_path, monkeypatch)
    assert main(["flow", "test", str(case)]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  (    ? s)  a known caller goes straight to a person\n" in out
    assert re.search(r"^seconds unknown: .*no prompt audio built; run `ivr prompts build`$", out, re.MULTILINE), out
    assert "max_seconds: seconds unknown: " in out


def test_audio_older_than_its_prompt_leaves_the_seconds_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built = settings().prompts_dir / "audio"
    case = seconds_case(tmp_path, 600)
    prompts = catalogue_copy(tmp_path, monkeypatch)
    (prompts / "audio").symlink_to(built)
    greeting = prompts / "sac.yaml"
    greeting.write_text(greeting.read_text(encoding="utf-8").replace("Olá!", "Bom dia!"), encoding="utf-8")
    assert main(["flow", "test", str(case)]) == 1
    out = capsys.readouterr().out
    assert "seconds unknown: prompt 'welcome' changed since its audio was built; run `ivr prompts build`" in out


def test_flow_test_shows_what_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "wrong.yaml"
    case.write_text(
        f"flow: {REPO_ROOT / 'flows/sac.yaml'}\n"
        "at: '2026-11-25 10:00'\n"
        "cases:\n"
        "  - name: expects billing but presses 1\n"
        "    caller: '3133334444'\n"
        "    inputs: ['1', '0']\n"
        "    expect: {outcome: 'queue:billing', tickets: [complaint], heard: [pizza]}\n",
        encoding="utf-8",
    )
    assert main(["flow", "test", str(case)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL  \( *\d+\.\d s\)  expects billing but presses 1", out)
    assert "outcome: expected queue:billing; got queue:technical" in out
    assert "tickets: expected complaint; opened none" in out
    assert 'the caller never heard "pizza"' in out
    assert "0 passed, 1 failed" in out


def test_a_malformed_test_file_is_named_with_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "bad.yaml"
    case.write_text("flow: ../sac.yaml\ncases:\n  - name: no caller\n    expect: {}\n", encoding="utf-8")
    assert main(["flow", "test", str(case)]) == 2
    assert f"{case}:3: case 'no caller': caller: Field required" in capsys.readouterr().err


def test_a_max_seconds_that_is_not_a_positive_number_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "bad.yaml"
    case.write_text(
        "flow: ../sac.yaml\ncases:\n  - name: no time at all\n    caller: null\n    expect:\n      max_seconds: 0\n",
        encoding="utf-8",
    )
    assert main(["flow", "test", str(case)]) == 2
    assert capsys.readouterr().err == (
        f"{case}:6: case 'no time at all': expect.max_seconds: Input should be greater than 0\n"
    )


def test_the_shipped_flows_pass_the_checks() -> None:
    report = check_paths([REPO_ROOT / "flows"], catalogue=settings().prompts_dir, registry=declared_registry())
    assert report.problems == (), report.render()


def test_a_bad_caller_action_in_a_test_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "bad.yaml"
    case.write_text(
        "flow: ../sac.yaml\ncases:\n  - {name: typo, caller: null, inputs: ['1', 'hang up'], expect: {}}\n",
        encoding="utf-8",
    )
    assert main(["flow", "test", str(case)]) == 2
    assert "case 'typo': inputs: 'hang up' is not a caller action" in capsys.readouterr().err


def test_a_flow_test_can_make_a_back_end_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "down.yaml"
    case.write_text(
        f"flow: {REPO_ROOT / 'flows/sac.yaml'}\n"
        "at: '2026-11-25 10:00'\n"
        "cases:\n"
        "  - name: the store is down when a call back is asked\n"
        "    caller: null\n"
        "    queues: {technical: no_agents}\n"
        "    operations: {open_ticket: error}\n"
        "    inputs: ['0', '1']\n"
        "    expect: {outcome: ended, tickets: [callback_request]}\n"
        "  - name: an operation that does not exist\n"
        "    caller: null\n"
        "    operations: {teleport: error}\n"
        "    expect: {}\n",
        encoding="utf-8",
    )
    assert main(["flow", "test", str(case)]) == 2
    captured = capsys.readouterr()
    assert "case 'an operation that does not exist': operations: teleport not registered" in captured.err


def test_a_flow_test_with_a_failing_back_end_reports_the_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "down.yaml"
    case.write_text(
        f"flow: {REPO_ROOT / 'flows/sac.yaml'}\n"
        "at: '2026-11-25 10:00'\n"
        "cases:\n"
        "  - name: the store is down when a call back is asked\n"
        "    caller: null\n"
        "    queues: {technical: no_agents}\n"
        "    operations: {open_ticket: error}\n"
        "    inputs: ['0', '1']\n"
        "    expect: {outcome: ended, tickets: [callback_request]}\n",
        encoding="utf-8",
    )
    assert main(["flow", "test", str(case)]) == 1
    assert "tickets: expected callback_request; opened none" in capsys.readouterr().out
