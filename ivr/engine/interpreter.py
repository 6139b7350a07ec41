"""Run one call through a flow: answer, allocate the protocol, walk the nodes, record the outcome.

Each call runs in its own TaskGroup, so a hang-up or a failure cancels everything the call started.
The walk is bounded twice: by ``settings.max_call_steps`` nodes, and by each node's own time limit.
When the engine cannot go on (a step limit, a stuck node, a channel error, a missing node), the call
ends as ``failed`` and the dialplan sends it to the fallback queue: the caller is never left in silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from integrations.registry import BackendError
from ivr import phone
from ivr.config import Settings, settings as configured_settings
from ivr.engine.channel import CallerHangup, Channel, ChannelError
from ivr.engine.context import CallContext, FlowError, Outcome
from ivr.engine.flow import Flow
from ivr.engine.services import CallSummary, NodeVisit, Services, Ticket
from ivr.engine.verbs.base import Verb

log = logging.getLogger(__name__)

#: How deep subflows may call subflows (a flow calling itself is a mistake, not recursion).
MAX_SUBFLOW_DEPTH = 5


class StepLimitExceeded(FlowError):
    """The call visited more nodes than ``settings.max_call_steps``: the flow loops."""


class NodeTimeout(FlowError):
    """A node ran past its time limit."""


@dataclass(slots=True)
class CallResult:
    protocol: str
    outcome: Outcome
    target: str = ""  # queue name or transfer number
    path: list[str] = field(default_factory=list)  # node names; subflow nodes as "flow/node"
    tickets: list[Ticket] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    customer_id: int | None = None
    reason: str = ""  # why a call failed
    summary_sent_by: tuple[str, ...] = ()  # channels the written summary of what was opened went by

    @property
    def summary(self) -> str:
        """ "queue:technical", "transfer:3195-8012", "hangup", "ended" or "failed"."""
        return f"{self.outcome.value}:{self.target}" if self.target else self.outcome.value


async def run_call(
    flow: Flow,
    channel: Channel,
    services: Services,
    *,
    flows: Mapping[str, Flow] = {},
    settings: Settings | None = None,
) -> CallResult:
    """Run a call from answer to end. ``flows`` holds the flows ``subflow:`` nodes may call."""
    config = settings or configured_settings()
    try:
        await channel.answer()
        protocol = await services.protocols.allocate(channel.info)
    except CallerHangup:
        return CallResult(protocol="", outcome=Outcome.HANGUP)
    call = CallContext(
        channel=channel,
        services=services,
        flow=flow,
        flows={flow.name: flow, **flows},
        protocol=protocol,
        timezone=config.timezone,
        hold_prompt=config.hold.prompt,
        hold_after_s=config.hold.after_s,
        caller_id=phone.normalise(channel.info.caller_id),
        speech_min_confidence=config.speech.min_confidence,
        due_days=config.billing.due_days,
    )
    walker = _Walker(call, config.max_call_steps)
    call.walk = walker.walk
    await services.calls.call_started(protocol, channel.info, flow.name, flow.version)
    reason = ""
    try:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(walker.walk(flow))
        except* CallerHangup:
            call.finish(Outcome.HANGUP)
        except* (FlowError, ChannelError) as failures:
            reason = "; ".join(str(exc) for exc in failures.exceptions)
            log.error("call %s failed in flow %s: %s", protocol, call.flow.name, reason)
            call.finish(Outcome.FAILED)
        if call.outcome is None:  # the flow ran out of nodes (a top-level `return`): end politely
            await channel.hangup()
            call.finish(Outcome.ENDED)
    except CallerHangup:
        call.finish(Outcome.HANGUP)
    finally:
        result = CallResult(
            protocol=protocol,
            outcome=call.outcome or Outcome.FAILED,
            target=call.outcome_target,
            path=list(call.path),
            tickets=list(call.tickets),
            variables=dict(call.variables),
            customer_id=call.customer_id,
            reason=reason,
        )
        await services.calls.call_ended(protocol, result.summary, result.variables)
        result.summary_sent_by = await _send_summary(call)
    return result


#: The call variable a flow sets to "whatsapp" when an unidentified mobile caller accepts the summary of
#: what the call opened on the number calling (the account's registered contacts get it anyway).
SUMMARY_TO_CALLER = "summary_to_caller"


async def _send_summary(call: CallContext) -> tuple[str, ...]:
    """One written summary of everything the call opened (nothing opened, nothing sent)."""
    if not call.tickets:
        return ()
    summary = CallSummary(
        protocol=call.protocol,
        customer_id=call.customer_id,
        caller_id=call.caller_id,
        tickets=tuple(call.tickets),
        to_caller_by_whatsapp=call.variables.get(SUMMARY_TO_CALLER) == "whatsapp",
    )
    try:
        return await call.services.summaries.send(summary)
    except BackendError as exc:  # the call is over: a summary the outbox cannot take now is logged
        log.error("call %s: the summary of what it opened could not be queued (%s)", call.protocol, exc)
        return ()


class _Walker:
    def __init__(self, call: CallContext, max_steps: int) -> None:
        self.call = call
        self.max_steps = max_steps
        self.steps = 0
        self.depth = 0

    async def walk(self, flow: Flow) -> bool:
        """Walk `flow` from its start; True if it returned (subflows), False if the call ended."""
        call = self.call
        if self.depth >= MAX_SUBFLOW_DEPTH:
            raise FlowError(f"subflows nested deeper than {MAX_SUBFLOW_DEPTH} (does '{flow.name}' call itself?)")
        self.depth += 1
        prefix = f"{flow.name}/" if self.depth > 1 else ""
        try:
            name: str | None = flow.start
            while name is not None:
                node = flow.nodes.get(name)
                if node is None:
                    raise FlowError(f"flow '{flow.name}' has no node '{name}'")
                self.steps += 1
                if self.steps > self.max_steps:
                    raise StepLimitExceeded(f"more than {self.max_steps} steps; the flow loops near '{name}'")
                call.path.append(prefix + name)
                name = await self._visit(flow, node.name, node.verb)
            returned = call.returning
            call.returning = False
            return returned
        finally:
            self.depth -= 1

    async def _visit(self, flow: Flow, name: str, verb: Verb) -> str | None:
        call = self.call
        call.visit_input = call.visit_outcome = ""
        started = call.services.clock()
        t0 = asyncio.get_running_loop().time()
        next_node: str | None = None
        outcome = ""
        limit_s = verb.time_limit_s()
        deadline = asyncio.timeout(limit_s)
        try:
            async with deadline:
                next_node = await verb.run(call)
            outcome = call.visit_outcome or (f"{call.outcome.value}" if call.outcome else next_node or "end")
        except CallerHangup:
            outcome = "hangup"
            raise
        except TimeoutError as exc:
            outcome = "timeout"
            if not deadline.expired():
                raise  # a bound inside the node (a channel command's own), which names its cause
            raise NodeTimeout(f"node '{name}' ran past its {limit_s:.0f} s limit") from exc
        finally:
            call.services.events.emit(
                NodeVisit(
                    call_protocol=call.protocol,
                    flow=flow.name,
                    flow_version=flow.version,
                    node=name,
                    verb=verb.kind,
                    input=call.visit_input,
                    outcome=outcome or "error",
                    started_at=started,
                    duration_ms=int((asyncio.get_running_loop().time() - t0) * 1000),
                )
            )
        return next_node
