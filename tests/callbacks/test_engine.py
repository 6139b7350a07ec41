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
