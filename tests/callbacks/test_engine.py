"""The engine keeps a call back in the book when an operation asks for one, with the call's context; a
call back the book cannot keep is an error the flow tells the caller."""

from __future__ import annotations

from ivr.engine.operations import Arg, BackendError, OperationContext, OperationResult, OperationSpec
from ivr.engine.ports import CallbackBook, CallbackRequest, Services
from tests.engine.fakes import Callbacks, registry, run, services

FLOW = """
flow: callback
start: who
nodes:
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: ask, not_found: ask, error: ask}
  ask:
    action: {operation: request_callback, args: {team: billing}, into: ticket, error: failed}
    next: done
  done:
    hangup: goodbye
  failed:
    hangup: callback_failed
"""


async def _request_callback(ctx: OperationContext, team: str) -> OperationResult:
    return OperationResult.found(
        ticket_number="800000021", ticket_kind="callback_request", callback_number=ctx.caller_id, callback_team=team
    )


def _services(book: CallbackBook) -> Services:
    operations = registry()
    spec = OperationSpec("request_callback", "", (Arg("team", str),), ("ticket_number", "callback_number"))
    operations.register(spec, _request_callback)
    svc = services(operations=operations)
    svc.callbacks = book
    return svc


async def test_a_call_back_asked_for_is_kept_with_the_call_context() -> None:
    book = Callbacks()
    result, _, _ = await run(FLOW, svc=_services(book))
    [kept] = book.scheduled
    assert kept == CallbackRequest(
        protocol=result.protocol,
        ticket_number="800000021",
        number="3133334444",
        team="billing",
        customer_id=7,
        customer_name="",
        caller_id="3133334444",
        path="who>ask",
        tickets="800000021",
    )
    assert result.path[-1] == "done"


class _Down(Callbacks):
    async def schedule(self, request: CallbackRequest) -> int:
        raise BackendError("store unavailable: disk I/O error")


async def test_a_call_back_that_cannot_be_kept_is_not_promised() -> None:
    result, _, _ = await run(FLOW, svc=_services(_Down()))
    assert result.path[-1] == "failed"


DROPS = """
flow: dropped
start: who
nodes:
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: menu, not_found: menu, error: menu}
  menu:
    menu:
      prompt: main_menu
      options: {"1": {go: billing}, "0": {go: person}}
      then: person
  billing:
    set: {team: billing}
    next: ask
  ask:
    collect: {prompt: type_customer_code, into: code, max_digits: 6, then: person}
    next: person
  person:
    queue: {name: billing, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""
NETWORK_OUT_OF_ORDER = 38


async def test_a_call_that_drops_in_a_journey_becomes_a_call_back_on_its_protocol() -> None:
    book = Callbacks()
    result, _, _ = await run(DROPS, ["1", "hangup"], svc=_services(book), line_cause=NETWORK_OUT_OF_ORDER)
    assert result.called_back
    [kept] = book.scheduled
    assert (kept.protocol, kept.number, kept.team, kept.reason) == (result.protocol, "3133334444", "billing", "dropped")
    assert (kept.customer_id, kept.ticket_number, kept.path) == (7, "", "who>menu>billing>ask")


async def test_a_caller_who_hangs_up_is_not_called_back() -> None:
    book = Callbacks()
    result, _, _ = await run(DROPS, ["1", "hangup"], svc=_services(book))  # 16: normal clearing
    assert not result.called_back and book.scheduled == []


async def test_only_an_identified_caller_being_served_with_a_callable_number_is_called_back() -> None:
    book = Callbacks()
    before_choosing, _, _ = await run(DROPS, ["hangup"], svc=_services(book), line_cause=NETWORK_OUT_OF_ORDER)
    unknown, _, _ = await run(
        DROPS, ["1", "hangup"], number="3199990000", svc=_services(book), line_cause=NETWORK_OUT_OF_ORDER
    )
    withheld, _, _ = await run(
        DROPS, ["1", "hangup"], number=None, svc=_services(book), line_cause=NETWORK_OUT_OF_ORDER
    )
    assert not (before_choosing.called_back or unknown.called_back or withheld.called_back)
    assert book.scheduled == []


async def test_a_caller_who_already_asked_for_a_call_back_gets_one_not_two() -> None:
    book = Callbacks()
    menu = DROPS.replace('options: {"1": {go: billing}', 'options: {"1": {go: ask_back}').replace(
        "  billing:",
        "  ask_back:\n    action: {operation: request_callback, args: {team: billing}, into: t, error: bye}\n"
        "    next: ask\n  billing:",
    )
    result, _, _ = await run(menu, ["1", "hangup"], svc=_services(book), line_cause=NETWORK_OUT_OF_ORDER)
    assert not result.called_back and len(book.scheduled) == 1 and book.scheduled[0].reason == "requested"
