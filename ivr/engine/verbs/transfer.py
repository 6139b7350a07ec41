"""``transfer``: send the call to an outside number (e.g. the negotiation line 3195-8012).

    negotiation:
      transfer: {number: "3195-8012", failed: negotiation_unavailable}
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ivr.engine.channel import TransferOutcome
from ivr.engine.context import CallContext, Outcome
from ivr.engine.verbs.base import Verb


class Transfer(Verb):
    kind = "transfer"

    number: str
    failed: str  # busy, no answer or the line failed
    ring_s: float = Field(default=40.0, gt=0, le=300)

    @field_validator("number")
    @classmethod
    def _dialable(cls, number: str) -> str:
        if not re.fullmatch(r"\+?[\d\s().-]{4,20}", number) or sum(ch.isdigit() for ch in number) < 4:
            raise ValueError(f"'{number}' is not a phone number")
        return number

    @property
    def digits(self) -> str:
        return "".join(ch for ch in self.number if ch.isdigit())

    def targets(self) -> list[tuple[str, str]]:
        return [("failed", self.failed)]

    def time_limit_s(self) -> float:
        return self.ring_s + 60.0

    async def run(self, call: CallContext) -> str | None:
        outcome = await call.channel.transfer(self.digits, timeout_s=self.ring_s)
        call.note(outcome=outcome.value)
        if outcome is TransferOutcome.ANSWERED:
            call.finish(Outcome.TRANSFER, self.number)
            return None
        return self.failed
