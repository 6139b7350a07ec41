"""Flow operations that send WhatsApp messages: the call's protocol, and a boleto's digitable line.

Each one writes template messages to the outbox (integrations.messaging.outbox) and returns at once; the drainer
sends them through the Cloud API (integrations.messaging.whatsapp). Messages go only to the WhatsApp numbers
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
    summary_template (sac_resumo), 3 body parameters (numbers and deadlines only: it may go to a caller
    who was not identified):
        "Resumo da sua ligação de {{1}} para o SAC American Tower Fibra. Protocolo de atendimento: {{2}}.
         Aberto nesta ligação: {{3}}. Acompanhe pelo SAC 3003-3336 ou pelo Meu Portal Fibra."
"""

from __future__ import annotations

from typing import Annotated

from integrations.messaging.email_operations import ticket_line
from integrations.messaging.messages import (
    CallAccounts,
    MessageOperations,
    MessagingSource,
    TicketLine,
    month_label,
    parse_month,
)
from integrations.messaging.outbox import NewMessage, Outbox
from integrations.messaging.whatsapp import recipient, template_body
from ivr import phone
from ivr.clock import Clock
from ivr.config import WhatsAppSettings
from ivr.domain import InvoiceStatus
from ivr.engine.operations import OperationContext, OperationResult, Requirement, operation
from ivr.store import boleto
from ivr.store.models import OutboxChannel


class WhatsAppOperations(MessageOperations):
    def __init__(
        self,
        source: MessagingSource,
        outbox: Outbox,
        *,
        conf: WhatsAppSettings,
        timezone: str,
        accounts: CallAccounts,
        clock: Clock,
    ) -> None:
        super().__init__(source, outbox, accounts=accounts, timezone=timezone, clock=clock)
        self._conf = conf

    @operation(
        "Send this call's protocol by WhatsApp to the account's registered WhatsApp numbers.",
        results=("protocol", "sent_to_masked"),
        requires=Requirement.IDENTIFIED,
    )
    async def whatsapp_protocol(self, ctx: OperationContext) -> OperationResult:
        account = await self._accounts.read(ctx.call_protocol, ctx.identified_customer)
        if not account.whatsapp:
            return OperationResult.not_found("no WhatsApp number registered on the account")
        parameters = (account.name, self._when(), ctx.call_protocol)
        masked = await self._send(ctx, account.whatsapp, self._conf.protocol_template, parameters)
        return OperationResult.found(protocol=ctx.call_protocol, sent_to_masked=masked)

    @operation(
        "Send the digitable line of a month's boleto (latest if none) by WhatsApp to the confirmed "
        "account's registered WhatsApp numbers; not for paid or overdue invoices.",
        results=("month", "sent_to_masked"),
        requires=Requirement.CONFIRMED,
    )
    async def whatsapp_digitable_line(
        self, ctx: OperationContext, month: Annotated[str, "YYYY-MM; empty for the latest invoice"] = ""
    ) -> OperationResult:
        try:
            wanted = parse_month(month)
        except ValueError as exc:
            return OperationResult.not_found(str(exc))
        customer_id = ctx.identified_customer
        account = await self._accounts.read(ctx.call_protocol, customer_id)
        invoice = await self._source.invoice(customer_id, wanted)
        if invoice is None:
            return OperationResult.not_found(f"no boleto for {month or 'the latest invoice'}")
        if invoice.status is not InvoiceStatus.OPEN:
            # Paid: nothing to pay. Overdue: paid by transfer or an updated boleto (the service page).
            return OperationResult.not_found(f"the invoice is {invoice.status.value}")
        line = await self._source.digitable_line(invoice)
        if not line:
            return OperationResult.not_found(f"no boleto for {month or 'the latest invoice'}")
        if not account.whatsapp:
            return OperationResult.not_found("no WhatsApp number registered on the account")
        reference = invoice.reference_month
        parameters = (
            account.name,
            ctx.call_protocol,
            month_label(reference),
            f"{invoice.due_date:%d/%m/%Y}",
            boleto.formatted(line),
        )
        masked = await self._send(ctx, account.whatsapp, self._conf.digitable_line_template, parameters)
        return OperationResult.found(month=f"{reference:%Y-%m}", sent_to_masked=masked)

    async def whatsapp_summary(self, ctx: OperationContext, tickets: list[TicketLine], *, to_caller: bool) -> bool:
        """The summary of what the call opened: to the account's registered WhatsApp numbers, or (an
        unidentified caller who accepted it) to the mobile calling. False when there is nowhere to send it."""
        if ctx.customer_id is not None:
            numbers = (await self._accounts.read(ctx.call_protocol, ctx.customer_id)).whatsapp
        else:
            calling = ctx.caller_id if to_caller and ctx.caller_id and phone.is_mobile(ctx.caller_id) else None
            numbers = tuple(n for n in [recipient(calling)] if n) if calling else ()
        if not numbers:
            return False
        opened = "; ".join(ticket_line(ticket) for ticket in tickets)
        await self._send(ctx, numbers, self._conf.summary_template, (self._when(), ctx.call_protocol, opened))
        return True

    # --- plumbing ----------------------------------------------------------------------------------

    async def _send(
        self, ctx: OperationContext, numbers: tuple[str, ...], template: str, parameters: tuple[str, ...]
    ) -> str:
        """Queue the template to each number; returns the numbers, masked."""
        body = template_body(parameters)
        messages = [
            NewMessage(
                channel=OutboxChannel.WHATSAPP,
                recipient=number,
                template=template,
                body=body,
                customer_id=self._source.outbox_customer(ctx.customer_id),
                call_protocol=ctx.call_protocol or None,
            )
            for number in numbers
        ]
        await self._enqueue(*messages)
        return ", ".join(phone.mask(number) for number in numbers)
