"""``hours``: open or closed now? Opening hours per weekday plus Brazil's national holidays, in the
timezone from settings (technical support is 24x7 and needs no ``hours`` node).

    billing_hours:
      hours:
        schedule: {weekdays: "08:00-18:00", sat: closed, sun: closed}
        open: billing_queue
        closed: billing_closed       # offer a callback or the 24x7 queue: never silence
        holiday: billing_closed      # optional; defaults to closed
"""

from __future__ import annotations

import re
from datetime import time
from typing import TYPE_CHECKING, Literal

import holidays
from pydantic import Field, field_validator

from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "weekdays", "every_day"]
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


def parse_spans(text: str) -> list[tuple[time, time]]:
    """ "08:00-12:00, 13:00-18:00" -> [(08:00, 12:00), (13:00, 18:00)]; "closed" -> []."""
    if text.strip() == "closed":
        return []
    spans = []
    for part in text.split(","):
        m = _SPAN.match(part.strip())
        if not m or int(m[1]) > 23 or int(m[3]) > 24 or int(m[2]) > 59 or int(m[4]) > 59:
            raise ValueError(f"'{part.strip()}' is not a span of hours like 08:00-18:00 (or write 'closed')")
        start = time(int(m[1]), int(m[2]))
        end = time.max if int(m[3]) == 24 else time(int(m[3]), int(m[4]))
        if end <= start:
            raise ValueError(f"'{part.strip()}' ends before it starts")
        spans.append((start, end))
    return spans


class Hours(Verb):
    kind = "hours"

    schedule: dict[Day, str] = Field(min_length=1)
    open: str
    closed: str
    holiday: str | None = None
    holidays: bool = True  # national holidays close the team
    state: str | None = Field(default=None, min_length=2, max_length=2)  # add this state's holidays (MG, SP...)

    @field_validator("schedule")
    @classmethod
    def _spans(cls, schedule: dict[str, str]) -> dict[str, str]:
        for text in schedule.values():
            parse_spans(text)
        return schedule

    def targets(self) -> list[tuple[str, str]]:
        edges = [("open", self.open), ("closed", self.closed)]
        return edges + ([("holiday", self.holiday)] if self.holiday else [])

    def spans_on(self, weekday: int) -> list[tuple[time, time]]:
        """The opening spans of a weekday (0 = Monday); a named day beats weekdays/every_day."""
        day = DAYS[weekday]
        for key in (day, "weekdays" if weekday < 5 else None, "every_day"):
            if key and key in self.schedule:
                return parse_spans(self.schedule[key])
        return []

    async def run(self, call: CallContext) -> Next:
        now = call.now()
        if self.holidays:
            calendar = holidays.country_holidays("BR", subdiv=self.state, years=now.year)
            if now.date() in calendar:
                return GoTo(self.holiday or self.closed, result=f"holiday:{calendar.get(now.date())}")
        moment = now.time().replace(tzinfo=None)
        if any(start <= moment < end for start, end in self.spans_on(now.weekday())):
            return GoTo(self.open, result="open")
        return GoTo(self.closed, result="closed")
