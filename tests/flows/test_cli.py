"""`ivr flow simulate` and `ivr flow test` as a supervisor runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import REPO_ROOT, settings
from ivr.flows.checks import check_paths
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.seed import seed


@pytest.fixture(autouse=True)
async def seeded_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The simulator runs against the configured store: point it at a fresh seeded one."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_VAR_DIR", str(tmp_path))
    settings.cache_clear()
    store = Store(url)
    try:
        await upgrade(store)
        await seed(store)
    finally:
        await store.aclose()
    yield
    settings.cache_clear()


def test_simulate_prints_what_the_caller_hears_in_portuguese(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--caller", "3133334444", "--input", "2,11222333,3,2"])
    out = capsys.readouterr().out
    assert status == 0
    assert "IVR: Olá! Você ligou para a American Tower Fibra." in out
    assert "O protocolo deste atendimento é dois mil e" in out
    assert "caller (keys): 11222333" in out
    assert "reais" in out  # the overdue amount, said in words
    assert ": transfer:+553131958012" in out
    assert "path: greet > identify_by_caller > announce_protocol > mail_protocol_or_not > mail_protocol" in out
    assert "main_menu > billing" in out


def test_simulate_refuses_an_action_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["flow", "simulate", str(REPO_ROOT / "flows/sac.yaml"), "--input", "1,press nine"])
    assert status == 2
    assert "'press nine' is not a caller action" in capsys.readouterr().err


def test_flow_test_reports_each_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "test"]) == 0
    out = capsys.readouterr().out
    assert "J18 a withheld caller hears 0 first and reaches a person without keying any data" in out
    assert " 0 failed" in out


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
    assert "FAIL  expects billing but presses 1" in out
    assert "outcome: expected queue:billing; got queue:technical" in out
    assert "tickets: expected complaint; opened none" in out
    assert 'the caller never heard "pizza"' in out
    assert "0 passed, 1 failed" in out


def test_a_malformed_test_file_is_named_with_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "bad.yaml"
    case.write_text("flow: ../sac.yaml\ncases:\n  - name: no caller\n    expect: {}\n", encoding="utf-8")
    assert main(["flow", "test", str(case)]) == 2
    assert "case 'no caller': caller: Field required" in capsys.readouterr().err


def test_the_shipped_flows_pass_the_checks() -> None:
    report = check_paths([REPO_ROOT / "flows"])
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
