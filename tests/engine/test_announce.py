"""The `announce` verb: what supervisors posted for this caller, once each, a key stopping it."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from ivr.engine.ports import Announcement, NoAnnouncements, Scope, Services

from .fakes import run, services


class Posted(NoAnnouncements):
    """Announcements in force by customer (None: callers not identified); remembers who asked, when."""

    def __init__(self, by_customer: dict[int | None, list[Announcement]]) -> None:
        self.by_customer = by_customer
        self.asked: list[tuple[int | None, datetime]] = []

    async def in_force(self, customer_id: int | None, now: datetime) -> list[Announcement]:
        self.asked.append((customer_id, now))
        return self.by_customer.get(customer_id, [])


def announcement(number: int, scope: str = "all") -> Announcement:
    return Announcement(
        number, f"aviso {number}", Scope.parse(scope), datetime(2030, 1, 1).astimezone(), f"announce/a{number}", 4.0
    )


FLOW = """
flow: t
start: identify
nodes:
  identify:
    lookup: {operation: customer_by_caller_id, found: protocol, not_found: protocol, error: protocol}
  protocol:
    say: {protocol: "{{ call.protocol }}"}
    next: announcements
  announcements:
    announce:
    next: again
  again:                # a second announce point says nothing already said
    announce:
    next: menu
  menu:
    menu:
      prompt: main_menu
      options:
        "1": {go: bye}
        "0": {go: bye}
      then: bye
  bye:
    hangup: goodbye
"""


def with_posted(posted: Posted) -> Services:
    return dataclasses.replace(services(), announcements=posted)


async def test_an_identified_caller_hears_what_is_in_force_for_them_once_after_the_protocol() -> None:
    city = announcement(2, "city:Belo Horizonte")
    posted = Posted({7: [announcement(1), city, city]})
    svc = with_posted(posted)
    result, channel, _ = await run(FLOW, ["1"], svc=svc)
    assert channel.heard.count("announce/a1") == 1 and channel.heard.count("announce/a2") == 1
    assert channel.heard.index("announce/a1") < channel.heard.index("main_menu")
    assert [who for who, _ in posted.asked] == [7, 7]
    assert all(when == svc.clock() for _, when in posted.asked)  # the call's clock, never the wall's
    assert result.path[:4] == ["identify", "protocol", "announcements", "again"]
    visits = {v.node: v.outcome for v in svc.events.visits}  # type: ignore[attr-defined]
    assert (visits["announcements"], visits["again"]) == ("announced 1,2", "none")


async def test_a_caller_not_identified_is_asked_for_as_none_and_nothing_in_force_says_nothing() -> None:
    posted = Posted({7: [announcement(1)]})
    _, channel, _ = await run(FLOW, ["1"], number="3199990000", svc=with_posted(posted))
    assert [who for who, _ in posted.asked] == [None, None]
    assert not any(pid.startswith("announce/") for pid in channel.heard)


async def test_a_key_stops_the_announcements_and_answers_the_menu() -> None:
    posted = Posted({7: [announcement(1), announcement(2)]})
    # (without the protocol, which no key interrupts and which would take the key)
    result, channel, _ = await run(FLOW.replace("found: protocol", "found: announcements"), ["barge:1"],
                                   svc=with_posted(posted))
    assert [e.detail for e in channel.events if e.kind == "keys"] == ["1 (during the prompt)"]
    assert "main_menu" not in channel.heard  # the key typed ahead answered the menu
    assert result.path[-2:] == ["menu", "bye"]


async def test_without_an_announcements_store_a_call_goes_straight_on() -> None:
    result, channel, _ = await run(FLOW, ["1"], svc=services())
    assert channel.heard[-2:] == ["main_menu", "goodbye"] and result.path[-1] == "bye"

