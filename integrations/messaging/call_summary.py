"""The written summary of a call: what it opened (tickets, requests, complaints, cancellation), each with
its deadline, sent when the call ends whatever the ending (`ivr.engine.ports.SummarySender`).

It goes through the durable outbox to the account's registered e-mails and WhatsApp numbers; an
unidentified caller on a mobile who accepted it gets it by WhatsApp on that number, with numbers and
deadlines only (no account data).
"""

from __future__ import annotations

from integrations.messaging.email_operations import EmailOperations
from integrations.messaging.messages import MessagingSource, TicketLine
from integrations.messaging.whatsapp_operations import WhatsAppOperations
from ivr.domain import TicketKind
from ivr.engine.operations import OperationContext
from ivr.engine.ports import CallSummary


class CallSummaries:
    def __init__(self, source: MessagingSource, email: EmailOperations, whatsapp: WhatsAppOperations) -> None:
        self._source = source
        self._email = email
        self._whatsapp = whatsapp

    async def send(self, summary: CallSummary) -> tuple[str, ...]:
        ctx = OperationContext(
            call_protocol=summary.protocol,
            caller_id=summary.caller_id,
            customer_id=summary.customer_id,
            account_confirmed=False,  # a summary says only what the caller was told on the call
        )
        tickets = await self._tickets(summary)
        sent_by: list[str] = []
        if await self._email.email_summary(ctx, tickets):
            sent_by.append("email")
        if await self._whatsapp.whatsapp_summary(ctx, tickets, to_caller=summary.to_caller_by_whatsapp):
            sent_by.append("whatsapp")
        return tuple(sent_by)

    async def _tickets(self, summary: CallSummary) -> list[TicketLine]:
        """The call's tickets as the back-end has them (kind, deadline); one it cannot list (another
        system's, for an unidentified caller) is still written, by its number."""
        known = {t.number: t for t in await self._source.call_tickets(summary.customer_id, summary.protocol)}
        return [known.get(t.number) or TicketLine(TicketKind(t.type), t.number, None) for t in summary.tickets]
