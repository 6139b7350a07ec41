"""``subflow`` runs another flow and comes back; ``return`` ends a subflow.

    billing:
      subflow: identify               # walks flows/identify.yaml from its start
      next: billing_menu              # where to go when it returns
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.engine.verbs.base import Continues, Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Subflow(Continues):
    kind = "subflow"
    shorthand = "flow"

    flow: str

    def time_limit_s(self) -> None:
        return None  # the subflow's own nodes are bounded one by one

    async def run(self, call: CallContext) -> str | None:
        returned = await call.run_subflow(self.flow)
        return self.next if returned else None


class Return(Verb):
    kind = "return"

    async def run(self, call: CallContext) -> str | None:
        call.returning = True
        return None
