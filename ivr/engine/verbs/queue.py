"""``queue``: hand the call to a team, with the call's context for the agent.

    billing_queue:
      queue:
        name: billing
        no_agents: billing_no_agents  # nobody logged in: tell the caller, offer a callback
        timeout: billing_callback     # waited too long
        callback: callback_offered    # optional: the caller asked for a call back instead of waiting
        wait_s: 600

Before joining, the IVR asks the queue's live state (`QueueWatch`, over AMI): nobody logged in goes to
`no_agents` at once (nobody waits in an empty queue); otherwise, unless an agent is free for the caller
(then the call simply rings), the caller hears the estimated wait (`ivr.engine.queue_wait`); their place
in line is said by the queue itself as they join, and again when it changes (asterisk_conf/queues.conf).
With `callback`, they also hear that the call-back key (1) works at any moment of the wait; above
`settings.queue_wait.offer_callback_over_s` that is an offer, with a few seconds to take it before joining.
Pressing 1 while waiting leaves the queue for `callback` too (for `timeout` without one). When the state
cannot be known in time (AMI down), the caller joins and is told nothing about it.

The agent sees the protocol, the customer, the path through the IVR and the tickets opened as channel
variables. When an agent answers, the IVR's part of the call is over.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import Field

from ivr.engine.channel import CALLBACK_KEY, QueueOutcome
from ivr.engine.context import CallContext, Outcome
from ivr.engine.ports import QueueLoad
from ivr.engine.queue_wait import announcement_ids, estimate
from ivr.engine.steps import EndCall, GoTo, Next
from ivr.engine.verbs.base import Verb

log = logging.getLogger(__name__)

CALLBACK_KEY_PROMPT = "queue_callback_key"
CALLBACK_OFFER_PROMPT = "queue_callback_offer"


class Queue(Verb):
    kind = "queue"

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    no_agents: str
    timeout: str
    callback: str | None = None  # where a caller who asks for a call back instead of waiting goes
    wait_s: float = Field(default=600.0, gt=0, le=3600)
    context: dict[str, str] = {}  # extra variables for the agent (templates allowed)

    def targets(self) -> list[tuple[str, str]]:
        edges = [("no_agents", self.no_agents), ("timeout", self.timeout)]
        return edges + ([("callback", self.callback)] if self.callback else [])

    def prompt_ids(self) -> list[str]:
        return [CALLBACK_KEY_PROMPT, CALLBACK_OFFER_PROMPT] if self.callback else []

    def time_limit_s(self) -> None:
        return None  # the channel returns when the conversation with the agent ends, bounded by the call's limit

    async def run(self, call: CallContext) -> Next:
        load = await self._load(call)
        if load is not None and load.agents == 0:
            return GoTo(self.no_agents, result=f"{QueueOutcome.NO_AGENTS.value}:{self.name}")
        if load is not None and await self._before_joining(call, load) and self.callback:
            return GoTo(self.callback, result=f"{QueueOutcome.CALLBACK.value}:{self.name}")
        state = call.state
        context = state.queue_context() | state.render_values(self.context)
        outcome = await call.caller.channel.queue(self.name, context=context, timeout_s=self.wait_s)
        result = f"{outcome.value}:{self.name}"
        if outcome is QueueOutcome.ANSWERED:
            return EndCall(Outcome.QUEUE, self.name, result=result)
        if outcome in (QueueOutcome.NO_AGENTS, QueueOutcome.FAILED):
            return GoTo(self.no_agents, result=result)
        if outcome is QueueOutcome.CALLBACK and self.callback:
            return GoTo(self.callback, result=result)
        return GoTo(self.timeout, result=result)

    async def _load(self, call: CallContext) -> QueueLoad | None:
        """The queue's state, or None when it is not known in time: the caller then just joins."""
        try:
            return await asyncio.wait_for(call.queues.load(self.name), call.queue_wait.state_timeout_s)
        except TimeoutError:
            log.warning("queue %s: no live state within %g s; the caller joins untold", self.name,
                        call.queue_wait.state_timeout_s)
            return None

    async def _before_joining(self, call: CallContext, load: QueueLoad) -> bool:
        """Tell the caller the wait; True when they take the call back offered instead."""
        wait = estimate(load)
        if wait.agent_free:
            return False  # the call rings an agent at once: nothing to wait for, nothing to say
        offer = self.callback is not None and wait.over(call.queue_wait.offer_callback_over_s)
        hint = [CALLBACK_OFFER_PROMPT if offer else CALLBACK_KEY_PROMPT] if self.callback else []
        await call.caller.play([*announcement_ids(wait), *hint])
        if self.callback is None:
            return False
        key = call.caller.take_key()  # pressed during the announcement
        if not key and offer:
            wait_s = call.queue_wait.offer_key_wait_s
            keys = await call.caller.channel.read_digits(
                max_digits=1, first_timeout_s=wait_s, inter_digit_timeout_s=wait_s, terminator=""
            )
            key = keys.digits
        return key == CALLBACK_KEY  # any other key means nothing here: the caller joins
