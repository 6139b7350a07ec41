"""A call's trace (`ivr calls show`) and the calls listed (`ivr calls list`): masked, newest first, filtered."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ivr.store.db import Store
from ivr.store.history import Attempt, CallFilter, MessageSent, Step, TicketOpened, listed, trace

from .calls_data import CALLS, DAY, GREETING, TICKET, A, B, C, D, E, F, G, H, at, write_day


@pytest.fixture
async def day(store: Store) -> Store:
    await write_day(store)
    return store


async def test_a_call_is_traced_from_answer_to_end_with_what_it_opened_and_sent(day: Store) -> None:
    seen = await trace(day, A)
    assert seen is not None
    start = CALLS[A][0]
    assert (seen.call.protocol, seen.call.started_at, seen.call.caller_masked) == (A, start, "31******44")
    assert (seen.call.customer_id, seen.call.customer_name, seen.call.outcome, seen.call.duration_s) == (
        1, "Serra Azul Ltda", "queue:technical", 120.0,
    )  # fmt: skip
    assert (seen.flow, seen.flow_version, seen.linked_id, seen.ended_at) == (
        "sac", "v7", f"{A}.1", start + timedelta(seconds=120),
    )  # fmt: skip
    assert seen.path[1] == Step("sac", "menu", "menu", "1", "1", start + timedelta(seconds=1), 1000, (), "v7")
    assert seen.path[0].prompts == GREETING
    assert [step.node for step in seen.path] == ["greet", "menu", "tech", "queue_tech"]
    assert seen.tickets == (TicketOpened(TICKET, "technical_failure", "open"),)
    assert seen.messages == (
        MessageSent("email", "f***@serraazul.com.br", "call_summary", "sent", 1, start + timedelta(minutes=3)),
        MessageSent("whatsapp", "31*******34", "call_summary", "pending", 0, None),
    )
    (callback,) = seen.callbacks
    assert (callback.team, callback.number_masked, callback.reason, callback.state) == (
        "technical", "31******44", "dropped", "answered",
    )  # fmt: skip
    assert callback.attempts == (
        Attempt(1, start + timedelta(minutes=10), "no_answer"),
        Attempt(2, start + timedelta(minutes=20), "answered"),
    )


async def test_a_call_is_found_by_a_ticket_opened_on_it_and_nothing_by_an_unknown_number(day: Store) -> None:
    found = await trace(day, f" {TICKET} ")
    assert found is not None and found.call.protocol == A
    assert await trace(day, "202699999990") is None


async def test_a_trace_shows_input_as_the_verb_masked_it_and_a_withheld_caller(day: Store) -> None:
    seen = await trace(day, D)
    assert seen is not None and seen.call.caller_masked == "withheld" and seen.call.outcome == "hangup"
    assert [(s.node, s.input, s.outcome) for s in seen.path[2:]] == [
        ("cnpj", "12.***.***/0001-**", "invalid"), ("cnpj", "", "hangup"),
    ]  # fmt: skip
    assert (await trace(day, C)).call.outcome == "contained"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("which", "protocols"),
    [
        (CallFilter(since=at(0)), [F, H, E, D, C, B, A]),
        (CallFilter(since=at(0), until=at(9, 45)), [D, C, B, A]),
        (CallFilter(since=at(0), limit=2), [F, H]),
        (CallFilter(since=at(0, 0, DAY - timedelta(days=1)), caller="+55 (31) 3333-4444"), [H, C, A, G]),
        (CallFilter(since=at(0), caller="11987654321"), [E, B]),
        (CallFilter(since=at(0), outcome="contained"), [H, C]),
        (CallFilter(since=at(0), outcome="hangup"), [D, B]),
        (CallFilter(since=at(0), outcome="queue"), [A]),
        (CallFilter(since=at(0), outcome="queue:billing"), []),
        (CallFilter(since=at(0), outcome="transfer"), [E]),
        (CallFilter(since=at(0), outcome="failed"), [F]),
    ],
)
async def test_calls_are_listed_newest_first_by_span_caller_and_outcome(
    day: Store, which: CallFilter, protocols: list[str]
) -> None:
    assert [line.protocol for line in await listed(day, which)] == protocols


async def test_a_listed_call_shows_its_caller_masked(day: Store) -> None:
    (line,) = await listed(day, CallFilter(since=at(0), caller="11 98765-4321", outcome="transfer"))
    assert (line.caller_masked, line.customer_name, line.outcome, line.duration_s) == (
        "11*******21", "", "transfer:+553131958012", 45.0,
    )  # fmt: skip
