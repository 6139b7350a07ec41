"""Run one call through a flow: answer, allocate the protocol, walk the nodes, record the outcome.

Each node's verb says what happens next (`ivr.engine.steps`); the walk here follows it, into subflows
and back, and records one node-visit event per node. Each call runs in its own TaskGroup, so a hang-up
or a failure cancels everything the call started.
The walk is bounded twice: by ``settings.max_call_steps`` nodes, and by each node's own time limit.
When the engine cannot go on (a step limit, a stuck node, a channel error, a missing node), the call
ends as ``failed`` and the dialplan sends it to the fallback queue: the caller is never left in silence.
A call that drops (its line ends with an abnormal cause) while an identified caller is being served
becomes a call back on its protocol (Decreto 11.034 asks for the return of dropped calls).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ivr import logs, phone
from ivr.config import Settings
from ivr.engine.caller import Caller
from ivr.engine.channel import CallerHangup, Channel, ChannelError
from ivr.engine.context import CallContext, Outcome
from ivr.engine.deadline import StepLimit
from ivr.engine.flow import Flow, FlowError, Node
from ivr.engine.gateway import OperationGateway
from ivr.engine.operations import BackendError
from ivr.engine.ports import CallbackBook, CallbackRequest, CallSummary, NodeVisit, Services, SummarySender, Ticket
from ivr.engine.state import CallState
from ivr.engine.steps import EndCall, GoTo, Next, ReturnToCaller, RunSubflow

log = logging.getLogger(__name__)

#: How deep subflows may call subflows (a flow calling itself is a mistake, not recursion).
MAX_SUBFLOW_DEPTH = 5
#: Q.850 causes of a call ended as people end calls: hung up (16, 31), or their line busy, unanswered or
#: rejecting (17, 19, 21). Any other cause while the caller was being served is a dropped call.
NORMAL_CAUSES = frozenset({16, 17, 19, 21, 31})
#: The queues a dropped call's call back may go to (the flow's `team` variable, as `request_callback`
#: takes it); any other team's caller goes to technical support, which answers 24x7.
CALLBACK_QUEUES = ("technical", "billing", "commercial")


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
    called_back: bool = False  # the call dropped and became a call back
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
    settings: Settings,
    flows: Mapping[str, Flow] = {},
) -> CallResult:
    """Run a call from answer to end. ``flows`` holds the flows ``subflow:`` nodes may call. Every line
    logged once the call has its protocol carries it (`ivr.logs`)."""
    metrics = services.metrics
    metrics.call_started()
    outcome = Outcome.FAILED  # unless the call gets further: one cancelled (a drain) counts as failed
    try:
        try:
            await channel.answer()
            protocol = await _allocate(channel, services)
        except CallerHangup:
            outcome = Outcome.HANGUP
            return CallResult(protocol="", outcome=Outcome.HANGUP)
        with logs.in_call(protocol):
            result = await _walk_call(protocol, flow, channel, services, settings, flows)
        outcome = result.outcome
        return result
    finally:
        metrics.call_ended(outcome.value)


async def _allocate(channel: Channel, services: Services) -> str:
    """The call's protocol, the one write a call waits for: how long it took is measured."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    protocol = await services.protocols.allocate(channel.info)
    services.metrics.protocol_allocated(loop.time() - started)
    return protocol


async def _walk_call(
    protocol: str, flow: Flow, channel: Channel, services: Services, settings: Settings, flows: Mapping[str, Flow]
) -> CallResult:
    """The answered call, from its protocol to its end: the walk, then its record, call back and summary."""
    call = _call_context(protocol, channel, services, settings)
    walk = _Walk(call, {flow.name: flow, **flows}, services, settings.max_call_steps)
    await services.calls.call_started(protocol, channel.info, flow.name, flow.version)
    services.watch.call_started(protocol, channel.info, flow.name)
    ending: EndCall | None = None  # None: the call was cancelled
    reason = ""
    try:
        async with asyncio.TaskGroup() as group:
            walked = group.create_task(walk.run(flow))
        ending = walked.result()
    except* CallerHangup:
        ending = EndCall(Outcome.HANGUP)
    except* (FlowError, ChannelError) as failures:
        reason = "; ".join(str(exc) for exc in failures.exceptions)
        log.error("call %s failed in flow %s: %s", protocol, flow.name, reason)
        ending = EndCall(Outcome.FAILED)
    finally:
        services.watch.call_ended(protocol)
        state = call.state
        result = CallResult(
            protocol=protocol,
            outcome=ending.outcome if ending else Outcome.FAILED,
            target=ending.target if ending else "",
            path=list(state.path),
            tickets=list(state.tickets),
            variables=dict(state.variables),
            customer_id=state.customer_id,
            reason=reason,
        )
        if result.outcome is Outcome.HANGUP and walk.chose:
            result.called_back = await _call_back_if_dropped(state, channel, services.callbacks)
        await services.calls.call_ended(
            protocol,
            result.summary,
            state.recorded_variables(),  # what the caller gave, masked as in the node visits
            customer_id=state.customer_id,
            customer_name=state.customer_name,
        )
        result.summary_sent_by = await _send_summary(state, services.summaries)
    return result


def _call_context(protocol: str, channel: Channel, services: Services, settings: Settings) -> CallContext:
    caller = Caller(channel, services.recognizer, protocol=protocol, min_confidence=settings.speech.min_confidence)
    state = CallState(
        protocol=protocol,
        caller_id=phone.normalise(channel.info.caller_id),
        dialled=channel.info.dialled,
        listening=caller.listening,
    )
    operations = OperationGateway(
        services.operations,
        state,
        caller,
        callbacks=services.callbacks,
        metrics=services.metrics,
        hold_prompt=settings.hold.prompt,
        hold_after_s=settings.hold.after_s,
    )
    return CallContext(
        caller,
        state,
        operations,
        clock=services.clock,
        timezone=ZoneInfo(settings.timezone),
        due_days=settings.billing.due_days,
        queues=services.queues,
        queue_wait=settings.queue_wait,
        announcements=services.announcements,
    )


async def _call_back_if_dropped(state: CallState, channel: Channel, callbacks: CallbackBook) -> bool:
    """Whether the call, which the caller left while being served (past a menu choice: in a journey or
    waiting for a person), dropped and now is a call back: only for an identified caller whose own number
    can be called back and who asked for none on this call, and only when the line ended abnormally."""
    number = phone.callback_number(state.caller_id)
    if state.customer_id is None or number is None or any(t.type == "callback_request" for t in state.tickets):
        return False
    cause = await channel.hangup_cause()
    if cause is None or cause in NORMAL_CAUSES:
        return False
    team = state.variables.get("team")
    context = state.queue_context()
    request = CallbackRequest(
        protocol=state.protocol,
        ticket_number="",
        number=number,
        team=team if team in CALLBACK_QUEUES else "technical",
        customer_id=state.customer_id,
        customer_name=context["customer_name"],
        caller_id=state.caller_id,
        path=context["path"],
        tickets=context["tickets"],
        reason="dropped",
    )
    try:
        await callbacks.schedule(request)
    except BackendError as exc:
        log.error("call %s dropped (cause %d) but its call back could not be kept (%s)", state.protocol, cause, exc)
        return False
    log.info("call %s dropped (cause %d): a call back to %s", state.protocol, cause, phone.mask(number))
    return True


#: The call variable a flow sets to "whatsapp" when an unidentified mobile caller accepts the summary of
#: what the call opened on the number calling (the account's registered contacts get it anyway).
SUMMARY_TO_CALLER = "summary_to_caller"


async def _send_summary(state: CallState, summaries: SummarySender) -> tuple[str, ...]:
    """One written summary of everything the call opened (nothing opened, nothing sent)."""
    if not state.tickets:
        return ()
    summary = CallSummary(
        protocol=state.protocol,
        customer_id=state.customer_id,
        caller_id=state.caller_id,
        tickets=tuple(state.tickets),
        to_caller_by_whatsapp=state.variables.get(SUMMARY_TO_CALLER) == "whatsapp",
    )
    try:
        return await summaries.send(summary)
    except BackendError as exc:  # the call is over: a summary the outbox cannot take now is logged
        log.error("call %s: the summary of what it opened could not be queued (%s)", state.protocol, exc)
        return ()


class _Walk:
    """One call's walk: node after node, into subflows and back, within the step limit and each node's
    time limit, with one node-visit event per node."""

    def __init__(self, call: CallContext, flows: Mapping[str, Flow], services: Services, max_steps: int) -> None:
        self.call = call
        self.flows = flows
        self.events = services.events
        self.watch = services.watch
        self.metrics = services.metrics
        self.clock = services.clock
        self.max_steps = max_steps
        self.steps = 0
        self.depth = 0  # flows being walked: the call's flow, then the subflows it ran
        self.chose = False  # the caller went past a menu: in a journey, or on the way to a person
        self.limit = StepLimit()  # each node's time limit, on one timer for the walk

    async def run(self, flow: Flow) -> EndCall:
        """Walk the call's flow until the call ends; a top-level `return` ends it politely."""
        try:
            ended = await self._flow(flow)
        finally:
            self.limit.stop()
        if isinstance(ended, ReturnToCaller):
            await self.call.caller.channel.hangup()
            return EndCall(Outcome.ENDED)
        return ended

    async def _flow(self, flow: Flow) -> EndCall | ReturnToCaller:
        """Walk `flow` from its start until it returns or the call ends."""
        if self.depth >= MAX_SUBFLOW_DEPTH:
            raise FlowError(f"subflows nested deeper than {MAX_SUBFLOW_DEPTH} (does '{flow.name}' call itself?)")
        self.depth += 1
        prefix = f"{flow.name}/" if self.depth > 1 else ""
        try:
            name = flow.start
            while True:
                node = flow.nodes.get(name)
                if node is None:
                    raise FlowError(f"flow '{flow.name}' has no node '{name}'")
                self.steps += 1
                if self.steps > self.max_steps:
                    raise StepLimitExceeded(f"more than {self.max_steps} steps; the flow loops near '{name}'")
                self.call.state.path.append(prefix + name)
                step = await self._visit(flow, node)
                self.chose = self.chose or node.verb.kind == "menu"
                if not isinstance(step, GoTo):
                    return step
                name = step.node
        finally:
            self.depth -= 1

    async def _visit(self, flow: Flow, node: Node) -> GoTo | ReturnToCaller | EndCall:
        """Run one node (and the subflow it runs, if any); its node-visit event says how it went."""
        started = self.clock()
        self.watch.node_entered(self.call.state.protocol, flow.name, node.name)
        t0 = asyncio.get_running_loop().time()
        step: Next | None = None
        outcome = "error"
        heard = self.call.caller.heard
        first_heard = until_heard = len(heard)
        limit_s = node.verb.time_limit_s()
        try:
            try:
                async with self.limit(limit_s):
                    step = await node.verb.run(self.call)
            except FlowError as exc:
                raise FlowError(f"flow '{flow.name}', node '{node.name}': {exc}") from exc
            finally:
                until_heard = len(heard)  # a subflow's prompts are its own nodes'
            if step.input:  # what the caller answered here, already masked where it is personal data
                self.call.state.keyed.append(f"{node.name}={step.input}")
            if isinstance(step, RunSubflow):
                step = await self._subflow(step)
            outcome = step.result or _where(step)
            return step
        except CallerHangup:
            outcome = "hangup"
            raise
        except TimeoutError as exc:
            outcome = "timeout"
            if not self.limit.expired:
                raise  # a bound inside the node (a channel command's own), which names its cause
            raise NodeTimeout(f"node '{node.name}' ran past its {limit_s:.0f} s limit") from exc
        finally:
            self.events.emit(
                NodeVisit(
                    call_protocol=self.call.state.protocol,
                    flow=flow.name,
                    flow_version=flow.version,
                    node=node.name,
                    verb=node.verb.kind,
                    input=step.input if step else "",
                    outcome=outcome,
                    started_at=started,
                    duration_ms=int((asyncio.get_running_loop().time() - t0) * 1000),
                    prompts=tuple(heard[first_heard:until_heard]),
                )
            )
            self.metrics.node_visited(flow.name, node.name, outcome)

    async def _subflow(self, step: RunSubflow) -> GoTo | EndCall:
        flow = self.flows.get(step.flow)
        if flow is None:
            raise FlowError(f"flow '{step.flow}' is not loaded")
        ended = await self._flow(flow)
        return GoTo(step.then) if isinstance(ended, ReturnToCaller) else ended


def _where(step: GoTo | ReturnToCaller | EndCall) -> str:
    """A node-visit event's outcome when the verb gave no result: where the call went."""
    if isinstance(step, GoTo):
        return step.node
    if isinstance(step, EndCall):
        return step.outcome.value
    return "end"
