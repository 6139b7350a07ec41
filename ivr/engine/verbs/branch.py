"""``branch``: go where the first true condition says (conditions read call variables only).

    identified:
      branch:
        when:
          - {if: "call.identified", go: billing_menu}
          - {if: "invoice and invoice.overdue", go: overdue}
        else: ask_cnpj
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ivr.engine.steps import GoTo, Next
from ivr.engine.template import check_expression
from ivr.engine.verbs.base import Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class When(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    condition: str = Field(alias="if")
    go: str

    @field_validator("condition")
    @classmethod
    def _parses(cls, condition: str) -> str:
        return check_expression(condition)


class Branch(Verb):
    kind = "branch"
    model_config = ConfigDict(populate_by_name=True)

    when: list[When] = Field(min_length=1)
    otherwise: str = Field(alias="else")

    def targets(self) -> list[tuple[str, str]]:
        return [*((f"if {w.condition}", w.go) for w in self.when), ("else", self.otherwise)]

    async def run(self, call: CallContext) -> Next:
        for number, case in enumerate(self.when, start=1):
            if call.state.evaluate(case.condition):
                return GoTo(case.go, result=f"when#{number}")
        return GoTo(self.otherwise, result="else")
