"""``transfer``: send the call to an outside number (e.g. the negotiation line +55 31 3195-8012).

    negotiation:
      transfer: {number: "+553131958012", failed: negotiation_unavailable}

The number is written in E.164, as the settings keep it; the channel dials it in the form the carrier
trunk takes (settings ``sip.trunk_number_format``).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ivr.engine.channel import TransferOutcome
from ivr.engine.context import CallContext, Outcome
from ivr.engine.steps import EndCall, GoTo, Next
from ivr.engine.verbs.base import Verb


class Transfer(Verb):
    kind = "transfer"

    number: str
    failed: str  # busy, no answer or the line failed
    ring_s: float = Field(default=40.0, gt=0, le=300)

    @field_validator("number")
    @classmethod
    def _e164(cls, number: str) -> str:
        if not re.fullmatch(r"\+55\d{10,11}", number):
            raise ValueError(f"'{number}' is not a Brazilian number in E.164 form, e.g. +553131958012")
        return number

    def targets(self) -> list[tuple[str, str]]:
        return [("failed", self.failed)]

    def time_limit_s(self) -> None:
        return None  # the channel returns when the conversation ends, bounded by the call's limit

    async def run(self, call: CallContext) -> Next:
        outcome = await call.caller.channel.transfer(self.number, timeout_s=self.ring_s)
        if outcome is TransferOutcome.ANSWERED:
            return EndCall(Outcome.TRANSFER, self.number, result=outcome.value)
        return GoTo(self.failed, result=outcome.value)
