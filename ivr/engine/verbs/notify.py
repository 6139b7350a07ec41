"""``notify``: send the caller something by e-mail or WhatsApp, to the contacts registered on the
account (the flow never gives an address). Each kind of message is one registry operation, so
`ivr flow check` verifies it like any other; delivery goes through the durable outbox.

    send_boleto:
      notify: {via: email, template: boleto, args: {month: "{{ month }}"}, error: not_sent}
      next: sent
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from ivr.engine.operations import OperationStatus
from ivr.engine.steps import GoTo, Next
from ivr.engine.verbs.action import Args
from ivr.engine.verbs.base import Continues

if TYPE_CHECKING:
    from ivr.engine.context import CallContext

#: What a flow can send, by which channel, and the operation (with its fixed arguments) that sends it.
NOTIFICATIONS: dict[tuple[str, str], tuple[str, dict[str, object]]] = {
    ("email", "protocol"): ("email_protocol", {}),
    ("whatsapp", "protocol"): ("whatsapp_protocol", {}),
    ("email", "boleto"): ("send_document", {"kind": "boleto"}),
    ("email", "nota_fiscal"): ("send_document", {"kind": "nota_fiscal"}),
    ("whatsapp", "digitable_line"): ("whatsapp_digitable_line", {}),
}


class Notify(Continues):
    kind = "notify"

    via: Literal["email", "whatsapp"]
    template: Literal["protocol", "boleto", "nota_fiscal", "digitable_line"]
    args: Args = {}  # e.g. month: "2026-10" for documents; empty for the latest
    error: str  # not sent: nothing registered, no such document, or the back-end failed

    @model_validator(mode="after")
    def _sendable(self) -> Notify:
        if (self.via, self.template) not in NOTIFICATIONS:
            choices = ", ".join(f"{t} by {v}" for v, t in NOTIFICATIONS)
            raise ValueError(f"there is no '{self.template}' message by {self.via}; one of: {choices}")
        return self

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("error", self.error)]

    def _operation(self) -> tuple[str, dict[str, object]]:
        name, fixed = NOTIFICATIONS[(self.via, self.template)]
        return name, {**fixed, **self.args}

    def operations(self) -> list[tuple[str, dict[str, object]]]:
        return [self._operation()]

    async def run(self, call: CallContext) -> Next:
        name, args = self._operation()
        status = (await call.operations.operate(name, args, into=None)).status
        return GoTo(self.next if status is OperationStatus.FOUND else self.error, result=status.value)
