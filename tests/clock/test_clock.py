"""One clock, passed in: the product reads the wall clock only in ivr/clock.py, so every call, flow test
and test sees the moment it is given."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.clock import ManualClock, local, moment_from, system_clock
from ivr.config import REPO_ROOT

CLOCK_MODULE = REPO_ROOT / "ivr" / "clock.py"
#: Calls that read the wall clock, by (object, method).
WALL_CLOCK = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime"),
}  # fmt: skip


def wall_clock_reads(source: str, path: Path) -> list[str]:
    """Where `source` reads the wall clock, as ``path:line: call``."""
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in WALL_CLOCK:
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {name}.{node.func.attr}()")
    return found


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    modules = sorted((REPO_ROOT / "ivr").rglob("*.py")) + sorted((REPO_ROOT / "integrations").rglob("*.py"))
    reads = [
        read
        for module in modules
        if module != CLOCK_MODULE
        for read in wall_clock_reads(module.read_text(encoding="utf-8"), module)
    ]
    assert reads == [], (
        "take a Clock (ivr.clock) as an argument instead of reading the wall clock:\n"
        + "\n".join(reads)
    )


@pytest.mark.parametrize(
    ("call", "reported"),
    [
        ("datetime.now(UTC)", "datetime.now()"),
        ("datetime.datetime.now()", "datetime.now()"),
        ("date.today()", "date.today()"),
        ("datetime.utcnow()", "datetime.utcnow()"),
        ("time.time()", "time.time()"),
    ],
)
def test_the_guard_finds_a_wall_clock_read(call: str, reported: str) -> None:
    source = f"def due():\n    return {call}\n"
    assert wall_clock_reads(source, REPO_ROOT / "ivr" / "late.py") == [f"ivr/late.py:2: {reported}"]


def test_the_guard_leaves_monotonic_time_and_arithmetic_alone() -> None:
    source = "import time\nstarted = time.monotonic()\nlater = now + timedelta(days=1)\nloop.time()\n"
    assert wall_clock_reads(source, REPO_ROOT / "ivr" / "timeouts.py") == []


def test_a_manual_clock_says_its_moment_until_set_to_another() -> None:
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    clock = ManualClock(christmas)
    assert clock() == clock() == christmas
    clock.set(datetime(2027, 1, 31, 23, 59, tzinfo=UTC))
    assert clock() == datetime(2027, 1, 31, 23, 59, tzinfo=UTC)


def test_a_manual_clock_refuses_a_moment_without_its_time_zone() -> None:
    with pytest.raises(ValueError, match="2026-12-25T10:00:00: a clock's moment needs its time zone"):
        ManualClock(datetime(2026, 12, 25, 10, 0))
    clock = ManualClock(datetime(2026, 12, 25, 10, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="needs its time zone"):
        clock.set(datetime(2026, 12, 26, 10, 0))


def test_the_system_clock_is_aware() -> None:
    assert system_clock().utcoffset() is not None


def test_a_written_moment_without_offset_is_local_time() -> None:
    assert local(datetime(2026, 12, 24, 21, 0), "America/Sao_Paulo") == datetime(2026, 12, 25, 0, 0, tzinfo=UTC)
    with_offset = datetime(2026, 12, 24, 21, 0, tzinfo=UTC)
    assert local(with_offset, "America/Sao_Paulo") is with_offset


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2h", "2026-12-06 12:00-03:00"),
        ("1h30m", "2026-12-06 11:30-03:00"),
        ("90min", "2026-12-06 11:30-03:00"),
        ("1d", "2026-12-07 10:00-03:00"),
        ("-1h", "2026-12-06 09:00-03:00"),
        ("2026-12-06 18:00", "2026-12-06 18:00-03:00"),  # local time unless it says otherwise
        ("2026-12-06T18:00Z", "2026-12-06 15:00-03:00"),
    ],
)
def test_a_moment_a_person_writes(text: str, moment: str) -> None:
    now = datetime.fromisoformat("2026-12-06 10:00-03:00")
    assert moment_from(text, now, "America/Sao_Paulo") == datetime.fromisoformat(moment)


@pytest.mark.parametrize(
    ("text", "moment"),
    [("2h", "2026-12-06 08:00-03:00"), ("-2h", "2026-12-06 08:00-03:00"), ("2026-12-01", "2026-12-01 00:00-03:00")],
)
def test_a_moment_in_the_past_counts_durations_back(text: str, moment: str) -> None:
    now = datetime.fromisoformat("2026-12-06 10:00-03:00")
    assert moment_from(text, now, "America/Sao_Paulo", past=True) == datetime.fromisoformat(moment)


def test_a_moment_that_is_neither_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="is not a date and time .* or a duration"):
        moment_from("amanhã", datetime.fromisoformat("2026-12-06 10:00-03:00"), "America/Sao_Paulo")
