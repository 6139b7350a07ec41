"""One call's state while it walks a flow, and the helpers verbs use to act on the call.

Verbs never touch the channel's type-ahead, the registry or the templates directly: they go through
`CallContext`, which keeps the caller's keys (DTMF barge-in), who the caller is, the variables gathered,
the tickets opened and the final outcome in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateError

from integrations.registry import OperationContext, OperationResult, OperationStatus, UnknownOperation
from ivr import phone
from ivr.engine.channel import Channel, Heard
from ivr.engine.flow import Flow
from ivr.engine.intents import Said
from ivr.engine.services import RecognitionError, Services, Ticket
from ivr.engine.template import evaluate, render

log = logging.getLogger(__name__)


class Outcome(str, Enum):
    QUEUE = "queue"  # an agent of a queue took the call
    TRANSFER = "transfer"  # the call went to an outside number
    HANGUP = "hangup"  # the caller left
    ENDED = "ended"  # the flow said goodbye and hung up
    FAILED = "failed"  # the engine could not go on; the dialplan sends the call to the fallback queue


class FlowError(Exception):
    """The flow asked for something that does not exist (a node, a flow); the call fails over."""


@dataclass(slots=True)
class CallContext:
    channel: Channel
    services: Services
    flow: Flow  # the flow being walked (a subflow while it runs)
    flows: Mapping[str, Flow]
    protocol: str
    timezone: str  # settings.timezone: opening hours are local time
    # settings.hold: played once when an operation is slow, so the caller does not think the line is dead.
    hold_prompt: str = ""
    hold_after_s: float = 1.0
    caller_id: str | None = None  # the national number (ivr.phone.normalise), None when withheld
    customer_id: int | None = None
    account_confirmed: bool = False
    customer: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    outcome: Outcome | None = None
    outcome_target: str = ""
    returning: bool = False  # a `return` node ended the current subflow
    typeahead: str = ""  # keys pressed during prompts, not yet used
    speech_min_confidence: float = 0.6  # settings.speech.min_confidence
    due_days: tuple[int, ...] = ()  # settings.billing.due_days: the days an invoice may fall due
    said_once: set[str] = field(default_factory=set)  # hints a call hears only once (prompt ids)
    visit_input: str = ""
    visit_outcome: str = ""
    # Set by the interpreter: walks a flow and says whether it returned (rather than ended the call).
    walk: Callable[[Flow], Awaitable[bool]] | None = None

    # --- the caller's keys and voice -------------------------------------------------------------

    async def play(self, prompt_ids: Sequence[str], *, interruptible: bool = True) -> None:
        """Play prompts; a key pressed during them stops them and is kept as type-ahead. Prompts are
        skipped when the caller has already keyed ahead (they know what they want)."""
        if not prompt_ids or (interruptible and self.typeahead):
            return
        key = await self.channel.play(prompt_ids, interruptible=interruptible)
        if interruptible and key:
            self.typeahead += key

    def once(self, prompt_id: str) -> list[str]:
        """[prompt_id] the first time a call asks for it, then []: a hint is said once per call."""
        if prompt_id in self.said_once:
            return []
        self.said_once.add(prompt_id)
        return [prompt_id]

    @property
    def listening(self) -> bool:
        """Whether questions listen for words: a recogniser is configured, or the caller's words arrive as
        text (simulator, flow tests). Otherwise they wait for keys only, recording nothing."""
        return self.channel.hears_words or self.services.recognizer.listens

    def take_key(self) -> str:
        """The first key typed ahead, or ""."""
        key, self.typeahead = self.typeahead[:1], self.typeahead[1:]
        return key

    def take_keys(self) -> str:
        keys, self.typeahead = self.typeahead, ""
        return keys

    def keyed_instead(self, heard: Heard) -> str:
        """The keys a caller pressed instead of speaking (kept as type-ahead); whatever was recorded before
        them is not heard, so it is deleted (a recording is personal data)."""
        if heard.audio is not None:
            heard.audio.unlink(missing_ok=True)
        self.typeahead += heard.interrupted_by
        return heard.interrupted_by

    async def hear(self, heard: Heard, hints: Sequence[str] = (), *, keep_audio: bool = False) -> Said:
        """What the caller said. Typed words (simulator, flow tests) are taken as said; audio goes to the
        recogniser with `hints` (the words the question expects). A recogniser failure, or a confidence
        under `speech_min_confidence`, makes the answer unclear: the question then asks for keys.
        A recording is personal data: it is deleted once heard, unless `keep_audio` (the flow keeps it)."""
        if heard.transcript is not None:
            return Said(heard.transcript.strip())
        if heard.audio is None:
            return Said("")
        try:
            recognition = await self.services.recognizer.recognise(heard, phrase_hints=hints)
        except RecognitionError as exc:
            log.warning("call %s: speech recognition failed (%s)", self.protocol, exc)
            return Said("", unclear=True)
        finally:
            if not keep_audio:
                heard.audio.unlink(missing_ok=True)
        text = recognition.transcript.strip()
        if text and recognition.confidence < self.speech_min_confidence:
            log.info("call %s: speech confidence %.2f is too low to act on", self.protocol, recognition.confidence)
            return Said(text, unclear=True)
        return Said(text)

    # --- templates --------------------------------------------------------------------------------

    def template_vars(self) -> dict[str, Any]:
        info = self.channel.info
        call = {
            "protocol": self.protocol,
            "caller_id": self.caller_id or "",
            "dialled": info.dialled,
            "identified": self.customer_id is not None,
            "confirmed": self.account_confirmed,
            "customer": dict(self.customer),
            "path": list(self.path),
            "tickets": [ticket.number for ticket in self.tickets],  # opened on this call
            "listening": self.listening,  # spoken answers can be heard on this call
            # The number calling can be called back (a Brazilian landline or mobile), and is a mobile.
            "callable": phone.callback_number(self.caller_id) is not None,
            "caller_mobile": phone.is_mobile(self.caller_id or ""),
        }
        return {**self.variables, "call": call}

    def render(self, template: str) -> str:
        try:
            return render(template, self.template_vars())
        except (TemplateError, TypeError) as exc:  # e.g. the sandbox refused an attribute
            raise FlowError(f"flow '{self.flow.name}': template {template!r} failed: {exc}") from exc

    def evaluate(self, expression: str) -> Any:
        try:
            return evaluate(expression, self.template_vars())
        except (TemplateError, TypeError) as exc:
            raise FlowError(f"flow '{self.flow.name}': condition {expression!r} failed: {exc}") from exc

    # --- operations -------------------------------------------------------------------------------

    async def operate(
        self, name: str, args: Mapping[str, object], *, into: str | None, timeout_s: float | None = None
    ) -> OperationResult:
        """Call a registry operation with templated args; keep its results, the customer it identifies
        and any ticket it opened."""
        rendered = {k: self.render(v) if isinstance(v, str) else v for k, v in args.items()}
        ctx = OperationContext(
            call_protocol=self.protocol,
            caller_id=self.caller_id,
            customer_id=self.customer_id,
            account_confirmed=self.account_confirmed,
        )
        try:
            result = await self._call_with_hold(name, rendered, ctx, timeout_s)
        except UnknownOperation as exc:
            raise FlowError(f"flow '{self.flow.name}' calls operation '{name}', which is not registered") from exc
        if result.status is OperationStatus.FOUND:
            spec = self.services.operations.get(name)
            if spec is not None and spec.identifies and result.data.get("customer_id") is not None:
                identified = int(result.data["customer_id"])
                # A confirmation holds for the account it was given for, never for another one.
                kept = self.account_confirmed and identified == self.customer_id
                self.customer_id = identified
                self.account_confirmed = kept or bool(result.data.get("confirmed"))
                self.customer = dict(result.data)
            if result.data.get("ticket_number"):
                kind = result.data.get("ticket_kind") or rendered.get("kind") or name
                self.tickets.append(Ticket(type=str(kind), number=str(result.data["ticket_number"])))
        if into:
            self.variables[into] = {**result.data, "status": result.status.value}
        return result

    async def _call_with_hold(
        self, name: str, args: Mapping[str, object], ctx: OperationContext, timeout_s: float | None
    ) -> OperationResult:
        """Run the operation; past `hold_after_s` the caller hears the hold prompt once while it goes on.
        The prompt is the only channel command meanwhile and ends before the result is used; the
        operation stays bounded by its own deadline (the registry's time-out)."""
        operation = asyncio.ensure_future(self.services.operations.call(name, args, ctx, timeout_s=timeout_s))
        try:
            done, _ = await asyncio.wait({operation}, timeout=self.hold_after_s)
            if not done and self.hold_prompt:
                await self.play([self.hold_prompt])
            return await operation
        finally:
            if not operation.done():  # the caller hung up, or the node ran out of time, during the prompt
                operation.cancel()
                await asyncio.wait({operation})

    # --- bookkeeping ------------------------------------------------------------------------------

    def note(self, *, input: str = "", outcome: str = "") -> None:
        """What the caller gave at this node and how it ended, for the node-visit event."""
        if input:
            self.visit_input = input
        if outcome:
            self.visit_outcome = outcome

    def finish(self, outcome: Outcome, target: str = "") -> None:
        self.outcome, self.outcome_target = outcome, target

    def now(self) -> datetime:
        return self.services.clock().astimezone(ZoneInfo(self.timezone))

    async def run_subflow(self, name: str) -> bool:
        """Walk another flow; True when it returned here, False when it ended the call."""
        flow = self.flows.get(name)
        if flow is None:
            raise FlowError(f"flow '{name}' is not loaded")
        if self.walk is None:
            raise RuntimeError("run_subflow called outside the interpreter")
        outer = self.flow
        self.flow = flow
        try:
            return await self.walk(flow)
        finally:
            self.flow = outer

    def queue_context(self) -> dict[str, str]:
        """The call's context for agents (channel variables)."""
        return {
            "protocol": self.protocol,
            "caller_id": self.caller_id or "",
            "customer": str(self.customer_id or ""),
            "customer_name": str(self.customer.get("customer_name", "")),  # integrations.accounts.IDENTITY
            "path": ">".join(self.path),
            "tickets": ",".join(t.number for t in self.tickets),
        }
