"""`ivr flow history`, `diff` and `rollback` as a supervisor runs them: which release is live, what changed,
and going back to one that worked, recorded like a publish."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import ivr.clock
from integrations.catalog import declared_registry
from ivr.clock import ManualClock
from ivr.config import settings
from ivr.flows.library import CURRENT, HISTORY, RELEASES, FlowLibrary
from ivr.flows.loader import load_flow
from tests.checks.test_cli import start_fake_serve

from .drafts import FIXTURES, edit, new_draft, run

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The operator's clock the commands read (they take ivr.clock.system_clock)."""
    manual = ManualClock(datetime(2026, 12, 5, 14, 0, tzinfo=SAO_PAULO))
    monkeypatch.setattr(ivr.clock, "system_clock", manual)
    return manual


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    var = tmp_path / "var"
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(FIXTURES / "prompts"))
    monkeypatch.setenv("IVR_VAR_DIR", str(var))
    monkeypatch.setenv("IVR_TIMEZONE", "America/Sao_Paulo")
    settings.cache_clear()
    yield var
    settings.cache_clear()


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    return new_draft(tmp_path)


@pytest.fixture
def three(var_dir: Path, draft: Path, clock: ManualClock, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Three releases an hour apart: the minimal flow; then a thank-you node and no support option (1);
    then the menu's retries ending in goodbye. Returns their versions, oldest first."""
    assert run(capsys, "publish", str(draft), "--who", "ana")[0] == 0
    clock.set(datetime(2026, 12, 5, 15, 0, tzinfo=SAO_PAULO))
    edit(draft, "    next: protocol\n", "    next: thanks\n  thanks:\n    play: please_hold\n    next: protocol\n")
    edit(draft, '        "1": {go: agent}\n', "")
    edit(draft, "prompt: main_menu", "prompt: short_menu")
    assert run(capsys, "publish", str(draft), "--who", "bruno", "--note", "menu sem suporte")[0] == 0
    clock.set(datetime(2026, 12, 5, 16, 0, tzinfo=SAO_PAULO))
    edit(draft, "then: agent", "then: goodbye")
    assert run(capsys, "publish", str(draft), "--who", "carla", "--note", "silêncio encerra")[0] == 0
    return [entry.version for entry in library(var_dir).history()]


def library(var_dir: Path) -> FlowLibrary:
    catalogue, registry = FIXTURES / "prompts", declared_registry()
    return FlowLibrary(var_dir / "published", catalogue=catalogue, registry=registry, clock=ivr.clock.system_clock)


def current(var_dir: Path) -> str:
    return (var_dir / "published" / CURRENT).read_text().strip()


# --- history ---------------------------------------------------------------------------------------------


def test_history_lists_releases_newest_first_numbered_from_the_first(
    three: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "history")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["N", "version", "when", "(America/Sao_Paulo)", "who", "note"]
    assert lines[1].split() == ["3", three[2], "2026-12-05", "16:00", "carla", "silêncio", "encerra", "CURRENT"]
    assert lines[2].split() == ["2", three[1], "2026-12-05", "15:00", "bruno", "menu", "sem", "suporte"]
    assert lines[3].split() == ["1", three[0], "2026-12-05", "14:00", "ana"]
    assert len(lines) == 4


def test_history_as_json_for_machines(three: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "history", "--json")
    assert status == 0
    records = json.loads(out)
    assert [(r["number"], r["version"], r["who"], r["note"], r["current"]) for r in records] == [
        (3, three[2], "carla", "silêncio encerra", True),
        (2, three[1], "bruno", "menu sem suporte", False),
        (1, three[0], "ana", None, False),
    ]
    assert records[2]["published_at"] == "2026-12-05T14:00:00-03:00"
    assert records[2]["files"] == ["minimal.yaml"]


def test_history_reads_entries_written_before_notes(var_dir: Path, three: list[str]) -> None:
    """A publish without --note writes the line older versions wrote (no note key); it still reads."""
    first = json.loads((var_dir / "published" / HISTORY).read_text().splitlines()[0])
    assert sorted(first) == ["files", "published_at", "version", "who"]
    assert library(var_dir).history()[0].note is None


def test_history_with_nothing_published(var_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "history") == (0, "nothing published yet: ivr flow publish\n", "")
    assert run(capsys, "history", "--json") == (0, "[]\n", "")


def test_a_note_of_several_lines_is_refused_and_nothing_is_published(
    var_dir: Path, draft: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "publish", str(draft), "--note", "first line\nsecond")
    assert (status, out) == (2, "")
    assert err == "ivr flow publish: --note: a note is one line of at most 200 characters\n"
    assert not (var_dir / "published" / HISTORY).exists()


# --- diff ------------------------------------------------------------------------------------------------


def test_diff_shows_the_text_and_what_changed_node_by_node(
    three: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "diff", "1", "2")
    assert status == 0
    assert "--- release 1/minimal.yaml\n+++ release 2/minimal.yaml\n" in out
    assert '\n-        "1": {go: agent}\n' in out
    assert "\n+  thanks:\n" in out
    summary = out[out.index("summary") :].splitlines()
    assert summary == [
        "summary (release 1 → release 2):",
        "  minimal.yaml:",
        "    node added: thanks",
        "    node changed: greet (changed: next)",
        "    node changed: main_menu (options removed: 1 → agent; changed: prompt)",
    ]


def test_diff_takes_versions_current_and_the_draft(
    three: list[str], draft: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "diff", three[1][:7], "current")
    assert status == 0
    assert "summary (version " + three[1] + " → current (release 3)):" in out
    assert "node changed: main_menu (changed: then)" in out

    edit(draft, '"0": {go: agent}', '"0": {go: agent}\n        "2": {go: goodbye}')
    status, out, _ = run(capsys, "diff", "current", str(draft))
    assert status == 0
    assert "node changed: main_menu (options added: 2 → goodbye)" in out


def test_diff_of_the_same_flows_says_no_differences(three: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "diff", "3", "current") == (0, "no differences between release 3 and current (release 3)\n", "")


@pytest.mark.parametrize(
    ("a", "b", "said"),
    [
        ("1", "9", "there is no release 9: expected a number from 1 to 3"),
        ("0", "1", "there is no release 0: expected a number from 1 to 3"),
        ("yesterday", "1", "'yesterday' is not a release number, a version, 'current' or a flows directory"),
        ("1", "abcdef0123", "'abcdef0123' is not a release number, a version, 'current' or a flows directory"),
    ],
)
def test_diff_of_something_unknown_says_what_it_expected(
    three: list[str], capsys: pytest.CaptureFixture[str], a: str, b: str, said: str
) -> None:
    status, out, err = run(capsys, "diff", a, b)
    assert (status, out) == (2, "")
    assert err.startswith(f"ivr flow diff: {said}") and err.count("\n") == 1


# --- rollback --------------------------------------------------------------------------------------------


async def test_rollback_serves_the_release_again_and_records_who_and_when(
    var_dir: Path, three: list[str], clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    server = library(var_dir)  # an ivr serve, in-process
    server.reload()
    held = server.snapshot()  # a call in progress
    clock.set(datetime(2026, 12, 6, 3, 10, tzinfo=SAO_PAULO))
    proc = await start_fake_serve()
    try:
        (var_dir / "ivr-serve.pid").write_text(f"{proc.pid}\n")
        status, out, _ = run(capsys, "rollback", "1", "--who", "dora", "--note", "menu 1 fazia falta")
        assert proc.stdout is not None
        assert await proc.stdout.readline() == b"reload\n"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()

    assert status == 0
    assert out.splitlines() == [
        f"rolled back to release 1: version {three[0]} is current again (history entry 4)",
        f"asked ivr serve (pid {proc.pid}) to reload",
    ]
    assert current(var_dir) == three[0]
    server.reload()
    assert server.version == three[0] and held.version == three[2]  # new calls take 1; the call goes on
    status, out, _ = run(capsys, "history")
    assert out.splitlines()[1].split() == [
        "4", three[0], "2026-12-06", "03:10", "dora", "rollback", "to", "1:", "menu", "1", "fazia", "falta", "CURRENT"
    ]
    assert "CURRENT" not in out.splitlines()[2]


def test_rollback_to_the_current_release_changes_nothing(
    var_dir: Path, three: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = (var_dir / "published" / HISTORY).read_text()
    assert run(capsys, "rollback", "3") == (
        0,
        f"release 3 (version {three[2]}) is already current: nothing changed\n",
        "",
    )
    assert (var_dir / "published" / HISTORY).read_text() == before


def test_a_release_that_no_longer_checks_is_refused_and_the_current_one_stays(
    var_dir: Path, three: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    history = (var_dir / "published" / HISTORY).read_text()
    broken = var_dir / "published" / RELEASES / three[0] / "minimal.yaml"
    broken.write_text(broken.read_text().replace("  greet:\n", "  greet\n"), encoding="utf-8")

    status, out, err = run(capsys, "rollback", "1")

    assert status == 1
    assert f"{broken}:" in out and "error" in out  # the checker's message, with file and line
    kept = f"the published version stays {three[2]}"
    assert err == f"ivr flow rollback: refused: release 1 fails today's checks; {kept}\n"
    assert current(var_dir) == three[2]
    assert (var_dir / "published" / HISTORY).read_text() == history


def test_a_release_whose_files_were_edited_after_publishing_is_refused(
    var_dir: Path, three: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Still a valid flow, but not what was published as release 1: rolling back to it would serve
    something nobody published."""
    edited = var_dir / "published" / RELEASES / three[0] / "minimal.yaml"
    edited.write_text(edited.read_text().replace("then: agent", "then: goodbye"), encoding="utf-8")
    status, out, _ = run(capsys, "rollback", "1")
    assert status == 1
    assert "the files of release 1 were changed after it was published" in out
    assert current(var_dir) == three[2]


@pytest.mark.parametrize(
    ("number", "said"),
    [
        ("7", "there is no release 7: expected a number from 1 to 3"),
        ("0", "there is no release 0: expected a number from 1 to 3"),
        ("abc", "'abc' is not a release number (see ivr flow history)"),
        ("-1", "'-1' is not a release number (see ivr flow history)"),
    ],
)
def test_rollback_to_an_unknown_release_says_what_it_expected(
    var_dir: Path, three: list[str], capsys: pytest.CaptureFixture[str], number: str, said: str
) -> None:
    history = (var_dir / "published" / HISTORY).read_text()
    assert run(capsys, "rollback", number) == (2, "", f"ivr flow rollback: {said}\n")
    assert (var_dir / "published" / HISTORY).read_text() == history
    assert current(var_dir) == three[2]


def test_rollback_with_nothing_published(var_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = "ivr flow rollback: nothing is published yet: run 'ivr flow publish'\n"
    assert run(capsys, "rollback", "1") == (2, "", expected)
    assert not (var_dir / "published").exists()


def test_a_calls_flow_version_names_the_releases_that_hold_it(
    var_dir: Path, three: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """What a call stores of its flow (the flow's own version) leads back to the release numbers in the
    history, a rollback's entry included; a version no release holds leads nowhere."""
    assert run(capsys, "rollback", "1", "--who", "dora")[0] == 0
    flows = library(var_dir)
    flows.reload()
    first, third = (
        {load_flow(path).version for path in (var_dir / "published" / RELEASES / v).glob("*.yaml")}
        for v in (three[0], three[2])
    )
    assert first and third - first
    assert [[e.number for e in flows.releases_holding(v)] for v in sorted(first)] == [[1, 4]] * len(first)
    assert [[e.number for e in flows.releases_holding(v)] for v in sorted(third - first)] == [[3]] * len(third - first)
    assert flows.releases_holding("0123456789abcdef") == []
