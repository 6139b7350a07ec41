"""``play``: say fixed prompts from the catalogue, then go on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import Continues, Prompts

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Play(Continues):
    kind = "play"
    shorthand = "prompts"

    prompts: Prompts = Field(min_length=1)
    interruptible: bool = True  # a key stops the prompts and is kept for the next question

    def prompt_ids(self) -> list[str]:
        return list(self.prompts)

    async def run(self, call: CallContext) -> Next:
        await call.caller.play(self.prompts, interruptible=self.interruptible)
        return GoTo(self.next)
