"""Flow operations that send e-mail: the call's protocol, a boleto or nota fiscal, a request to a team.

Each one writes to the outbox (integrations.messaging.outbox) and returns at once; the drainer sends later. Mail
to a customer goes only to the e-mail contacts registered on the identified account, never to an address
said on the call; documents need a confirmed account. Team requests go to the service page's mailboxes
(settings().page). Texts are in Portuguese, as the customer and the teams read them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from integrations.messaging.messages import (
    Account,
    CallAccounts,
    MessageOperations,
    MessagingSource,
    TicketLine,
    month_label,
    parse_month,
)
from integrations.messaging.outbox import Attachment, NewMessage, Outbox
from ivr import email_address, phone
from ivr.clock import Clock
from ivr.config import ServicePage
from ivr.domain import DocumentKind, InvoiceStatus, TicketKind
from ivr.engine.operations import OperationContext, OperationResult, OperationStatus, Requirement, operation
from ivr.store import boleto
from ivr.store.models import OutboxChannel

TEAMS = ("scheduled_activity", "bgp")
TICKET_LABELS = {
    TicketKind.TECHNICAL_FAILURE: "Falha técnica",
    TicketKind.SERVICE_REQUEST: "Solicitação de serviço",
    TicketKind.BILLING_DOUBT: "Dúvida de faturamento",
    TicketKind.BILLING_DISPUTE: "Contestação de cobrança",
    TicketKind.BOLETO_COPY: "Segunda via de boleto",
    TicketKind.NOTA_FISCAL_COPY: "Cópia de nota fiscal",
    TicketKind.COMPLAINT: "Reclamação",
    TicketKind.CANCELLATION: "Cancelamento",
    TicketKind.DUE_DATE_CHANGE: "Alteração de vencimento",
    TicketKind.MAINTENANCE_RESCHEDULE: "Reagendamento de atividade programada",
    TicketKind.BGP_REQUEST: "Solicitação BGP",
    TicketKind.CALLBACK_REQUEST: "Pedido de retorno",
}
DOCUMENT_LABELS = {DocumentKind.BOLETO: "segunda via do boleto", DocumentKind.NOTA_FISCAL: "cópia da nota fiscal"}
TEAM_LABELS = {"scheduled_activity": "Atividade programada", "bgp": "BGP"}
SIGNATURE = (
    "Atenciosamente,\n"
    "SAC American Tower Fibra - {sac}\n"
    "Esta é uma mensagem automática; para falar conosco, ligue para o SAC."
)


class EmailOperations(MessageOperations):
    def __init__(
        self,
        source: MessagingSource,
        outbox: Outbox,
        *,
        page: ServicePage,
        timezone: str,
        accounts: CallAccounts,
        clock: Clock,
    ) -> None:
        super().__init__(source, outbox, accounts=accounts, timezone=timezone, clock=clock)
        self._page = page

    @operation(
        "E-mail this call's protocol (and the tickets opened on it) to the account's registered e-mails.",
        results=("protocol", "sent_to_masked"),
        requires=Requirement.IDENTIFIED,
    )
    async def email_protocol(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        account = await self._accounts.read(ctx.call_protocol, customer_id)
        tickets = await self._source.call_tickets(customer_id, ctx.call_protocol)
        if not account.emails:
            return OperationResult.not_found("no e-mail registered on the account")
        lines = [
            f"Olá, {account.name}.",
            "",
            f"Este é o registro da sua ligação de {self._when()} para o SAC American Tower Fibra.",
            "",
            f"Protocolo de atendimento: {ctx.call_protocol}",
        ]
        if tickets:
            lines += ["", "Chamados abertos nesta ligação:"]
            lines += [f"- {ticket_line(ticket)}" for ticket in tickets]
        lines += [
            "",
            "Guarde este número: com ele você acompanha o seu atendimento pelo SAC ou pelo Meu Portal Fibra.",
        ]
        subject = f"Protocolo de atendimento {ctx.call_protocol} - American Tower Fibra"
        masked = await self._to_account(ctx, account, "call_protocol", subject, lines)
        return OperationResult.found(protocol=ctx.call_protocol, sent_to_masked=masked)

    async def email_summary(self, ctx: OperationContext, tickets: list[TicketLine]) -> bool:
        """The summary of what the call opened, to the account's registered e-mails; False when the
        caller is not identified or the account has no e-mail."""
        if ctx.customer_id is None:
            return False
        account = await self._accounts.read(ctx.call_protocol, ctx.customer_id)
        if not account.emails:
            return False
        lines = [
            f"Olá, {account.name}.",
            "",
            f"Este é o resumo da sua ligação de {self._when()} para o SAC American Tower Fibra.",
            "",
            f"Protocolo de atendimento: {ctx.call_protocol}",
            "",
            "Aberto nesta ligação:",
            *(f"- {ticket_line(ticket)}" for ticket in tickets),
            "",
            f"Com estes números você acompanha cada pedido pelo SAC {self._sac()} ou pelo Meu Portal Fibra.",
        ]
        subject = f"Resumo da ligação {ctx.call_protocol} - American Tower Fibra"
        await self._to_account(ctx, account, "call_summary", subject, lines)
        return True

    @operation(
        "E-mail the boleto or nota fiscal of a month (latest if none) to the confirmed account's e-mails.",
        results=("month", "sent_to_masked", "kind"),
        requires=Requirement.CONFIRMED,
    )
    async def send_document(
        self,
        ctx: OperationContext,
        kind: Annotated[DocumentKind, "boleto or nota_fiscal"],
        month: Annotated[str, "YYYY-MM; empty for the latest invoice"] = "",
    ) -> OperationResult:
        try:
            wanted = parse_month(month)
        except ValueError as exc:
            return OperationResult.not_found(str(exc))
        customer_id = ctx.identified_customer
        account = await self._accounts.read(ctx.call_protocol, customer_id)
        if not account.emails:
            return OperationResult.not_found("no e-mail registered on the account")
        invoice = await self._source.invoice(customer_id, wanted)
        document = await self._source.document(invoice, kind) if invoice is not None else None
        if invoice is None or document is None:
            return OperationResult.not_found(f"no {kind.value} for {month or 'the latest invoice'}")
        reference = month_label(invoice.reference_month)
        label = DOCUMENT_LABELS[kind]
        lines = [
            f"Olá, {account.name}.",
            "",
            f"Conforme pedido na sua ligação de {self._when()} para o SAC American Tower Fibra "
            f"(protocolo {ctx.call_protocol}), segue anexa a {label} referente a {reference}.",
            "",
        ]
        if kind is DocumentKind.BOLETO:
            lines += [
                f"Vencimento: {invoice.due_date:%d/%m/%Y}",
                f"Valor: {_reais(invoice.amount)}",
                f"Linha digitável: {boleto.formatted(document.digitable_line)}",
            ]
            if invoice.status is InvoiceStatus.OVERDUE:
                lines += [
                    "",
                    "Esta fatura está vencida: o pagamento pode ser feito por transferência ou com um boleto de "
                    f"valor atualizado, pedido ao SAC. Depois de pagar, envie o comprovante para "
                    f"{self._page.receivables_email}.",
                ]
        else:
            lines += [f"Nota fiscal nº {document.number}", f"Valor total: {_reais(invoice.amount)}"]
        subject = f"{label[0].upper()}{label[1:]} - {reference} - American Tower Fibra"
        masked = await self._to_account(ctx, account, kind.value, subject, lines, (document.attachment,))
        return OperationResult.found(month=f"{invoice.reference_month:%Y-%m}", sent_to_masked=masked, kind=kind.value)

    @operation(
        "Send a request with this call's protocol, customer and details to a team's mailbox.",
        results=("queued", "team"),
    )
    async def email_team(
        self,
        ctx: OperationContext,
        team: Annotated[str, "scheduled_activity or bgp"],
        subject: Annotated[str, "what the caller asks for"],
        details: Annotated[str, "the caller's words"] = "",
    ) -> OperationResult:
        mailboxes = {"scheduled_activity": self._page.scheduled_activity_email, "bgp": self._page.bgp_email}
        if team not in mailboxes:
            return OperationResult(OperationStatus.ERROR, {}, f"unknown team {team!r} ({', '.join(TEAMS)})")
        customer_id = ctx.customer_id
        account = await self._accounts.read(ctx.call_protocol, customer_id) if customer_id is not None else None
        tickets = await self._source.call_tickets(customer_id, ctx.call_protocol)
        lines = [
            f"Pedido recebido pelo SAC {self._sac()} em {self._when()}.",
            "",
            f"Assunto: {subject}",
            f"Protocolo da ligação: {ctx.call_protocol}",
            f"Telefone de origem: {ctx.caller_id or 'não identificado'}",
        ]
        if account is None:
            lines.append("Cliente: não identificado na ligação")
        else:
            confirmed = "confirmado" if ctx.account_confirmed else "identificado pelo telefone, não confirmado"
            lines += [
                f"Cliente: {account.name} ({confirmed})",
                f"CNPJ: {account.cnpj}",
                f"Código do cliente: {account.code}",
            ]
        lines += [f"Chamado aberto na ligação: {ticket_line(t)}" for t in tickets]
        lines += ["", "Detalhes ditos pelo cliente:", details.strip() or "(nenhum)"]
        message = NewMessage(
            channel=OutboxChannel.EMAIL,
            recipient=mailboxes[team],
            template=f"team_{team}",
            subject=f"[SAC {TEAM_LABELS[team]}] {subject} - protocolo {ctx.call_protocol}",
            body="\n".join(lines) + "\n",
            customer_id=self._source.outbox_customer(customer_id),
            call_protocol=ctx.call_protocol or None,
        )
        await self._enqueue(message)
        return OperationResult.found(queued=True, team=team)

    # --- plumbing ----------------------------------------------------------------------------------

    async def _to_account(
        self,
        ctx: OperationContext,
        account: Account,
        template: str,
        subject: str,
        lines: list[str],
        attachments: tuple[int | Attachment, ...] = (),
    ) -> str:
        """Queue one message per registered e-mail; returns the addresses, masked."""
        body = "\n".join([*lines, "", SIGNATURE.format(sac=self._sac())]) + "\n"
        await self._enqueue(
            *(
                NewMessage(
                    channel=OutboxChannel.EMAIL,
                    recipient=address,
                    template=template,
                    subject=subject,
                    body=body,
                    attachments=attachments,
                    customer_id=self._source.outbox_customer(ctx.customer_id),
                    call_protocol=ctx.call_protocol or None,
                )
                for address in account.emails
            )
        )
        return ", ".join(email_address.mask(address) for address in account.emails)

    def _sac(self) -> str:
        """3003-3336, as callers dial it."""
        dialled = phone.normalise(self._page.sac_number) or self._page.sac_number
        return f"{dialled[:4]}-{dialled[4:]}" if len(dialled) == 8 else dialled


def ticket_line(ticket: TicketLine) -> str:
    """Reclamação nº 800000123, prazo 11/12/2026"""
    expected = f", prazo {ticket.expected_date:%d/%m/%Y}" if ticket.expected_date else ""
    return f"{TICKET_LABELS.get(ticket.kind, ticket.kind.value)} nº {ticket.number}{expected}"


def _reais(amount: Decimal) -> str:
    """R$ 1.234,56"""
    text = f"{amount:,.2f}"
    return "R$ " + text.replace(",", "_").replace(".", ",").replace("_", ".")

