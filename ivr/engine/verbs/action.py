"""``lookup`` and ``action``: call a named operation of the registry (integrations/).

    find_by_caller:
      lookup:
        operation: customer_by_caller_id
        into: found                  # results become {{ found.name }}, {{ found.status }}...
        found: main_menu
        not_found: main_menu
        error: main_menu             # back-end failed; "timeout:" may go elsewhere (default: error)

    open_it:
      action:
        operation: open_ticket
        args: {kind: technical, circuit: "{{ circuit }}"}
        error: sorry_try_later
      next: say_ticket

A ``lookup`` branches on what it found; an ``action`` does something and goes on (anything but success
goes to ``error``). Operations flagged ``identifies`` set who the caller is for the rest of the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from ivr.engine.operations import OperationStatus
from ivr.engine.steps import GoTo, Next
from ivr.engine.template import check_template
from ivr.engine.verbs.base import Continues, VarName, Verb

if TYPE_CHECKING:
    from ivr.engine.context import CallContext

Args = dict[str, str | int | float | bool]


class _OperationCall(Verb):
    operation: str
    args: Args = {}
    into: VarName | None = None
    within_s: float | None = Field(default=None, gt=0, le=60)  # the operation's time limit

    @field_validator("args")
    @classmethod
    def _templates(cls, args: Args) -> Args:
        for value in args.values():
            if isinstance(value, str):
                check_template(value)
        return args

    def operations(self) -> list[tuple[str, dict[str, object]]]:
        return [(self.operation, dict(self.args))]

    async def _call(self, call: CallContext) -> OperationStatus:
        result = await call.operations.operate(self.operation, self.args, into=self.into, timeout_s=self.within_s)
        return result.status


class Lookup(_OperationCall):
    kind = "lookup"

    found: str
    not_found: str
    error: str
    timeout: str | None = None

    def targets(self) -> list[tuple[str, str]]:
        edges = [("found", self.found), ("not_found", self.not_found), ("error", self.error)]
        return edges + ([("timeout", self.timeout)] if self.timeout else [])

    async def run(self, call: CallContext) -> Next:
        status = await self._call(call)
        return GoTo(self._branch(status), result=status.value)

    def _branch(self, status: OperationStatus) -> str:
        if status is OperationStatus.FOUND:
            return self.found
        if status is OperationStatus.NOT_FOUND:
            return self.not_found
        if status is OperationStatus.TIMEOUT and self.timeout:
            return self.timeout
        return self.error


class Action(_OperationCall, Continues):
    kind = "action"

    error: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("error", self.error)]

    async def run(self, call: CallContext) -> Next:
        status = await self._call(call)
        return GoTo(self.next if status is OperationStatus.FOUND else self.error, result=status.value)
