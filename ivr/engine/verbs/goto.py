"""``goto``: jump to another node (``goto: main_menu``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.base import Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Goto(Verb):
    kind = "goto"
    shorthand = "target"

    target: str

    def targets(self) -> list[tuple[str, str]]:
        return [("goto", self.target)]

    async def run(self, call: CallContext) -> Next:
        return GoTo(self.target)
