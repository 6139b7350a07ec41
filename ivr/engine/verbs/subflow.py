"""``subflow`` runs another flow and comes back; ``return`` ends a subflow.

    billing:
      subflow: identify               # walks flows/identify.yaml from its start
      next: billing_menu              # where to go when it returns
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.engine.steps import Next, ReturnToCaller, RunSubflow
from ivr.engine.verbs.base import Continues, Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Subflow(Continues):
    kind = "subflow"
    shorthand = "flow"

    flow: str

    async def run(self, call: CallContext) -> Next:
        return RunSubflow(self.flow, then=self.next)


class Return(Verb):
    kind = "return"

    async def run(self, call: CallContext) -> Next:
        return ReturnToCaller()
