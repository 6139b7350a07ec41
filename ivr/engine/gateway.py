"""The back-end operations as a call uses them.

Arguments are rendered from the call's variables; the caller hears the hold prompt once when an
operation is slow, so they do not think the line is dead; and what an operation finds is kept in the
call's state: who the caller is (operations flagged ``identifies``), the tickets it opened, and its
results ``into`` a variable (those declared ``personal`` masked in the call's records). A result naming
a ``callback_number`` and ``callback_team`` is a call back the IVR owes: it is kept in the call back book
with the call's context before the caller hears it was registered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from ivr import phone
from ivr.engine.caller import Caller
from ivr.engine.flow import FlowError
from ivr.engine.operations import (
    BackendError,
    OperationContext,
    OperationRegistry,
    OperationResult,
    OperationStatus,
    UnknownOperation,
)
from ivr.engine.ports import CallbackBook, CallbackRequest, Metrics, Ticket
from ivr.engine.state import CallState

log = logging.getLogger(__name__)


class OperationGateway:
    def __init__(
        self,
        registry: OperationRegistry,
        state: CallState,
        caller: Caller,
        *,
        callbacks: CallbackBook,
        metrics: Metrics,
        hold_prompt: str,
        hold_after_s: float,
    ) -> None:
        self._registry = registry
        self._callbacks = callbacks
        self._metrics = metrics
        self._state = state
        self._caller = caller
        self._hold_prompt = hold_prompt  # settings.hold: "" plays nothing
        self._hold_after_s = hold_after_s

    async def operate(
        self, name: str, args: Mapping[str, object], *, into: str | None, timeout_s: float | None = None
    ) -> OperationResult:
        """Call a registry operation with templated args; keep its results, the customer it identifies
        and any ticket it opened."""
        state = self._state
        rendered = state.render_values(args)
        ctx = OperationContext(
            call_protocol=state.protocol,
            caller_id=state.caller_id,
            customer_id=state.customer_id,
            account_confirmed=state.account_confirmed,
        )
        try:
            result = await self._call_with_hold(name, rendered, ctx, timeout_s)
        except UnknownOperation as exc:
            raise FlowError(f"operation '{name}' is not registered") from exc
        spec = self._registry.get(name)
        if result.status is OperationStatus.FOUND:
            if spec is not None and spec.identifies and result.data.get("customer_id") is not None:
                state.identify(
                    int(result.data["customer_id"]), result.data, confirmed=bool(result.data.get("confirmed"))
                )
            if result.data.get("ticket_number"):
                kind = result.data.get("ticket_kind") or rendered.get("kind") or name
                state.tickets.append(Ticket(type=str(kind), number=str(result.data["ticket_number"])))
            if result.data.get("callback_number") and result.data.get("callback_team"):
                result = await self._keep_callback(result)
        if into:
            kept = {**result.data, "status": result.status.value}
            masked = {field: _masked(kept[field]) for field in (spec.personal if spec else ()) if kept.get(field)}
            state.keep(into, kept, masked={**kept, **masked} if masked else kept)
        return result

    async def _keep_callback(self, result: OperationResult) -> OperationResult:
        """The call back in the book, or an error the flow tells the caller: a promise nobody keeps is
        worse than none (the back-end's ticket stays, for the team to see)."""
        state = self._state
        context = state.queue_context()
        request = CallbackRequest(
            protocol=state.protocol,
            ticket_number=str(result.data.get("ticket_number") or ""),
            number=str(result.data["callback_number"]),
            team=str(result.data["callback_team"]),
            customer_id=state.customer_id,
            customer_name=context["customer_name"],
            caller_id=state.caller_id,
            path=context["path"],
            tickets=context["tickets"],
        )
        try:
            await self._callbacks.schedule(request)
        except BackendError as exc:
            log.error("call %s: the call back could not be kept (%s)", state.protocol, exc)
            return OperationResult(OperationStatus.ERROR, {}, f"call back not kept: {exc}")
        return result

    async def _call_with_hold(
        self, name: str, args: Mapping[str, object], ctx: OperationContext, timeout_s: float | None
    ) -> OperationResult:
        """Run the operation; past `hold_after_s` the caller hears the hold prompt once while it goes on.
        The prompt is the only channel command meanwhile and ends before the result is used; the
        operation stays bounded by its own deadline (the registry's time-out)."""
        operation = asyncio.ensure_future(self._measured(name, args, ctx, timeout_s))
        try:
            done, _ = await asyncio.wait({operation}, timeout=self._hold_after_s)
            if not done and self._hold_prompt:
                await self._caller.play([self._hold_prompt])
            return await operation
        finally:
            if not operation.done():  # the caller hung up, or the node ran out of time, during the prompt
                operation.cancel()
                await asyncio.wait({operation})

    async def _measured(
        self, name: str, args: Mapping[str, object], ctx: OperationContext, timeout_s: float | None
    ) -> OperationResult:
        """The registry's answer, its status and latency counted (a refusal or a time-out too)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self._registry.call(name, args, ctx, timeout_s=timeout_s)
        self._metrics.operation_done(name, result.status.value, loop.time() - started)
        return result


def _masked(value: object) -> str:
    """A personal result as the call's records show it: a phone number as the logs show one, anything else
    by its length."""
    text = str(value)
    return phone.mask(text) if phone.normalise(text) else f"<{len(text)} chars>"
