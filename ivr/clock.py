"""The one clock a call reads: business time (deadlines, opening hours, holidays, due dates, the
protocol's year, the times stored), passed in to whatever needs it.

Library code takes a `Clock` as an argument; only the wiring (`ivr.app`, the command-line entry points)
picks `system_clock`. Flow tests and unit tests pass a `ManualClock`, so what a call sees follows the
moment the test names, never the day it runs. This is the only module that reads the wall clock
(tests/clock/test_clock.py holds the rest of the code to that). Timeouts use asyncio's monotonic loop time,
which is not business time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: Returns the current moment as an aware datetime.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The host's wall clock, in UTC."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that says the moment it was given until it is set to another."""

    def __init__(self, moment: datetime) -> None:
        self._moment = _aware(moment)

    def __call__(self) -> datetime:
        return self._moment

    def set(self, moment: datetime) -> None:
        self._moment = _aware(moment)


def local(moment: datetime, timezone: str) -> datetime:
    """A moment a person wrote (a flow test's `at`, ``--at``): a naive one is local time in `timezone`."""
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=ZoneInfo(timezone))


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()}: a clock's moment needs its time zone")
    return moment
