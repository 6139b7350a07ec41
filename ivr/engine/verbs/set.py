"""``set``: give call variables a value (templates allowed)::

    remember_journey:
      set: {journey: billing, wants_invoice: "{{ call.identified }}"}
      next: billing_menu

A value copied from something personal (``"{{ call.caller_id }}"``, a CNPJ the caller keyed) is recorded
masked, as the original is (`CallState.assign`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from ivr.engine.steps import GoTo, Next
from ivr.engine.template import check_template
from ivr.engine.verbs.base import Continues, VarName

if TYPE_CHECKING:
    from ivr.engine.context import CallContext


class Set(Continues):
    kind = "set"

    values: dict[VarName, str | int | float | bool] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _values_are_the_mapping(cls, data: Any) -> Any:
        if isinstance(data, dict) and "values" not in data:
            rest = dict(data)
            next_node = rest.pop("next", None)
            return {"values": rest} | ({"next": next_node} if next_node is not None else {})
        return data

    @field_validator("values")
    @classmethod
    def _templates(cls, values: dict[str, Any]) -> dict[str, Any]:
        for value in values.values():
            if isinstance(value, str):
                check_template(value)
        return values

    async def run(self, call: CallContext) -> Next:
        state = call.state
        for name, value in self.values.items():
            state.assign(name, state.render(value) if isinstance(value, str) else value)
        return GoTo(self.next)
