"""The one clock a call reads: business time (deadlines, opening hours, holidays, due dates, the
protocol's year, the times stored), passed in to whatever needs it.

Library code takes a `Clock` as an argument; only the wiring (`ivr.app`, the command-line entry points)
picks `system_clock`. Flow tests and unit tests pass a `ManualClock`, so what a call sees follows the
moment the test names, never the day it runs. This is the only module that reads the wall clock
(tests/clock/test_clock.py holds the rest of the code to that). Timeouts use asyncio's monotonic loop time,
which is not business time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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


_DURATION = re.compile(r"(?P<sign>-?)(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?")


def moment_from(text: str, now: datetime, timezone: str, *, past: bool = False) -> datetime:
    """A moment a person wrote: a duration from `now` ("2h", "90m", "1d", "1h30m"; "-1h" an hour ago; with
    `past`, as for ``--since``, "2h" is two hours ago too) or a date and time ("2026-12-06 18:00", ISO 8601),
    local time in `timezone` unless it gives its offset. Raises ValueError saying what is accepted."""
    spaced = text.strip().lower().replace(" ", "")
    match = _DURATION.fullmatch(spaced)
    if match and any(match[unit] for unit in "dhm"):
        span = timedelta(days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
        return now - span if match["sign"] or past else now + span
    try:
        return local(datetime.fromisoformat(text.strip()), timezone)
    except ValueError:
        accepted = "a date and time (2026-12-06 18:00) or a duration (2h, 90m, 1d)"
        raise ValueError(f"{text!r} is not {accepted}") from None


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()}: a clock's moment needs its time zone")
    return moment
