"""``notify``: send the caller something by e-mail or WhatsApp, through the registry's ``notify``
operation (the channels themselves live in integrations/). Only contacts registered on the account are
used; the flow never gives an address.

    send_invoice:
      notify: {via: email, template: invoice_copy, args: {invoice: "{{ invoice.number }}"}, error: sorry}
      next: sent
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from integrations.registry import OperationStatus
from ivr.engine.verbs.action import Args
from ivr.engine.verbs.base import Continues

if TYPE_CHECKING:
    from ivr.engine.context import CallContext

#: The registry operation every notification goes through.
NOTIFY_OPERATION = "notify"


class Notify(Continues):
    kind = "notify"

    via: Literal["email", "whatsapp"]
    template: str
    args: Args = {}
    error: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("error", self.error)]

    def _args(self) -> dict[str, object]:
        return {"via": self.via, "template": self.template, **self.args}

    def operations(self) -> list[tuple[str, dict[str, object]]]:
        return [(NOTIFY_OPERATION, self._args())]

    async def run(self, call: CallContext) -> str | None:
        result = await call.operate(NOTIFY_OPERATION, self._args(), into=None)
        call.note(outcome=result.status.value)
        return self.next if result.status is OperationStatus.FOUND else self.error
