"""Flow operations that send WhatsApp messages: the call's protocol, and a boleto's digitable line.

Each one writes template messages to the outbox (integrations.outbox) and returns at once; the drainer
sends them through the Cloud API (integrations.whatsapp). Messages go only to the WhatsApp numbers
registered on the identified account (contacts of kind ``whatsapp``; an account without any gets them on
its registered mobile phones), never to a number said or shown on the call; the digitable line needs a
confirmed account.

The templates, approved in WhatsApp Manager in pt_BR (names from settings().whatsapp):

    protocol_template (sac_protocolo), 3 body parameters:
        "Olá, {{1}}. O protocolo da sua ligação de {{2}} para o SAC American Tower Fibra é {{3}}.
         Com ele você acompanha o seu atendimento pelo SAC ou pelo Meu Portal Fibra."
    digitable_line_template (sac_linha_digitavel), 5 body parameters:
        "Olá, {{1}}. Conforme pedido na ligação de protocolo {{2}}, segue a linha digitável do boleto de
         {{3}}, com vencimento em {{4}}: {{5}}"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.messages import MessageOperations, latest_invoice, month_label, parse_month
from integrations.outbox import NewMessage, Outbox
from integrations.registry import Arg, Handler, OperationContext, OperationResult, OperationSpec
from integrations.whatsapp import recipient, template_body
from ivr import phone
from ivr.config import WhatsAppSettings
from ivr.store import boleto
from ivr.store.db import Store
from ivr.store.models import (
    Contact,
    ContactKind,
    Customer,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    OutboxChannel,
)

SPECS: tuple[tuple[str, str, tuple[Arg, ...], tuple[str, ...]], ...] = (
    (
        "whatsapp_protocol",
        "Send this call's protocol by WhatsApp to the account's registered WhatsApp numbers.",
        (),
        ("protocol", "sent_to_masked"),
    ),
    (
        "whatsapp_digitable_line",
        "Send the digitable line of a month's boleto (latest if none) by WhatsApp to the confirmed "
        "account's registered WhatsApp numbers; not for paid or overdue invoices.",
        (Arg("month", str, required=False, description="YYYY-MM; empty for the latest invoice"),),
        ("month", "sent_to_masked"),
    ),
)


def specs(handler_for: Callable[[str], Handler]) -> Iterator[OperationSpec]:
    for name, description, args, results in SPECS:
        yield OperationSpec(name, description, args, results, handler_for(name))


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    numbers: tuple[str, ...]  # recipients, +<country><number>


class WhatsAppOperations(MessageOperations):
    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        *,
        conf: WhatsAppSettings,
        timezone: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(store, outbox, timezone=timezone, clock=clock)
        self._conf = conf

    async def whatsapp_protocol(self, ctx: OperationContext) -> OperationResult:
        if ctx.customer_id is None:
            return OperationResult.not_found("caller not identified")
        customer_id = ctx.customer_id
        account = await self._read(lambda session: _account(session, customer_id))
        if not account.numbers:
            return OperationResult.not_found("no WhatsApp number registered on the account")
        parameters = (account.name, self._when(), ctx.call_protocol)
        masked = await self._send(ctx, account, self._conf.protocol_template, parameters)
        return OperationResult.found(protocol=ctx.call_protocol, sent_to_masked=masked)

    async def whatsapp_digitable_line(self, ctx: OperationContext, month: str = "") -> OperationResult:
        if ctx.customer_id is None or not ctx.account_confirmed:
            return OperationResult.not_found("account not confirmed")
        try:
            wanted = parse_month(month)
        except ValueError as exc:
            return OperationResult.not_found(str(exc))
        customer_id = ctx.customer_id

        def read(session: Session) -> tuple[_Account, Invoice | None, str]:
            invoice = latest_invoice(session, customer_id, wanted)
            boletos = [d for d in invoice.documents if d.kind is DocumentKind.BOLETO] if invoice else []
            line = boletos[0].digitable_line if boletos else ""
            return _account(session, customer_id), invoice, line

        account, invoice, line = await self._read(read)
        if invoice is None or not line:
            return OperationResult.not_found(f"no boleto for {month or 'the latest invoice'}")
        if invoice.status is not InvoiceStatus.OPEN:
            # Paid: nothing to pay. Overdue: paid by transfer or an updated boleto (the service page).
            return OperationResult.not_found(f"the invoice is {invoice.status.value}")
        if not account.numbers:
            return OperationResult.not_found("no WhatsApp number registered on the account")
        reference = invoice.reference_month
        parameters = (
            account.name,
            ctx.call_protocol,
            month_label(reference),
            f"{invoice.due_date:%d/%m/%Y}",
            boleto.formatted(line),
        )
        masked = await self._send(ctx, account, self._conf.digitable_line_template, parameters)
        return OperationResult.found(month=f"{reference:%Y-%m}", sent_to_masked=masked)

    # --- plumbing ----------------------------------------------------------------------------------

    async def _send(
        self, ctx: OperationContext, account: _Account, template: str, parameters: tuple[str, ...]
    ) -> str:
        """Queue the template to each registered number; returns the numbers, masked."""
        body = template_body(parameters)
        messages = [
            NewMessage(
                channel=OutboxChannel.WHATSAPP,
                recipient=number,
                template=template,
                body=body,
                customer_id=ctx.customer_id,
                call_protocol=ctx.call_protocol or None,
            )
            for number in account.numbers
        ]
        await self._enqueue(*messages)
        return ", ".join(phone.mask(number) for number in account.numbers)


def _account(session: Session, customer_id: int) -> _Account:
    """The account's WhatsApp numbers; without any, its registered mobile phones."""
    customer = session.get_one(Customer, customer_id)
    contacts = session.scalars(
        select(Contact)
        .where(Contact.customer_id == customer_id)
        .where(Contact.kind.in_([ContactKind.WHATSAPP, ContactKind.PHONE]))
        .order_by(Contact.id)
    ).all()

    whatsapp: list[str] = []
    mobiles: list[str] = []
    for contact in contacts:
        national = phone.normalise(contact.value)
        number = recipient(national) if national else None
        if number is None:
            continue
        if contact.kind is ContactKind.WHATSAPP:
            whatsapp.append(number)
        elif _is_mobile(national or ""):
            mobiles.append(number)
    chosen = whatsapp or mobiles
    return _Account(customer.name, tuple(dict.fromkeys(chosen)))


def _is_mobile(national: str) -> bool:
    """A Brazilian mobile (area code + 9 digits starting with 9): the phones WhatsApp is used on."""
    return len(national) == 11 and national.isdigit() and national[2] == "9"
