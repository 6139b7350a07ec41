"""``queue``: hand the call to a team, with the call's context for the agent.

    billing_queue:
      queue:
        name: billing
        no_agents: billing_no_agents  # nobody logged in: tell the caller, offer a callback
        timeout: billing_callback     # waited too long
        wait_s: 600

The agent sees the protocol, the customer, the path through the IVR and the tickets opened as channel
variables. When an agent answers, the IVR's part of the call is over.
"""

from __future__ import annotations

from pydantic import Field

from ivr.engine.channel import QueueOutcome
from ivr.engine.context import CallContext, Outcome
from ivr.engine.steps import EndCall, GoTo, Next
from ivr.engine.verbs.base import Verb


class Queue(Verb):
    kind = "queue"

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    no_agents: str
    timeout: str
    wait_s: float = Field(default=600.0, gt=0, le=3600)
    context: dict[str, str] = {}  # extra variables for the agent (templates allowed)

    def targets(self) -> list[tuple[str, str]]:
        return [("no_agents", self.no_agents), ("timeout", self.timeout)]

    def time_limit_s(self) -> None:
        return None  # the channel returns when the conversation with the agent ends, bounded by the call's limit

    async def run(self, call: CallContext) -> Next:
        state = call.state
        context = state.queue_context() | {k: state.render(v) for k, v in self.context.items()}
        outcome = await call.caller.channel.queue(self.name, context=context, timeout_s=self.wait_s)
        result = f"{outcome.value}:{self.name}"
        if outcome is QueueOutcome.ANSWERED:
            return EndCall(Outcome.QUEUE, self.name, result=result)
        if outcome in (QueueOutcome.NO_AGENTS, QueueOutcome.FAILED):
            return GoTo(self.no_agents, result=result)
        return GoTo(self.timeout, result=result)
