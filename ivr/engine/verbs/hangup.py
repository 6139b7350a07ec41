"""``hangup``: say goodbye (never interrupted) and end the call."""

from __future__ import annotations

from ivr.engine.context import CallContext, Outcome
from ivr.engine.steps import EndCall, Next
from ivr.engine.verbs.base import Prompts, Verb


class Hangup(Verb):
    kind = "hangup"
    shorthand = "prompts"

    prompts: Prompts = []

    def prompt_ids(self) -> list[str]:
        return list(self.prompts)

    async def run(self, call: CallContext) -> Next:
        await call.caller.play(self.prompts, interruptible=False)
        await call.caller.channel.hangup()
        return EndCall(Outcome.ENDED)
