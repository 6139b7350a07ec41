"""The messaging operations' source (integrations.messaging.messages.MessagingSource) for ``backend: http``: the
account's registered contacts, its invoices and their documents, read from the carrier API.

Documents are fetched while the call asks for them and go into the outbox row as files: the carrier's
ids mean nothing to our store, and a row that carries its PDF is sent after a restart, or while the
carrier API is down, exactly as the caller was told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from integrations.carrier.client import CarrierClient, NotFound
from integrations.carrier.contract import day, money
from integrations.messaging.messages import Account, Document, InvoiceRef, TicketLine, account_of
from integrations.messaging.outbox import Attachment
from ivr.domain import ContactKind, DocumentKind, InvoiceStatus, TicketKind

_FILES = {DocumentKind.BOLETO: "boleto.pdf", DocumentKind.NOTA_FISCAL: "nota-fiscal.pdf"}


@dataclass(frozen=True, slots=True)
class _CarrierInvoice(InvoiceRef):
    nota_fiscal_number: str  # empty before it is issued


class CarrierSource:
    def __init__(self, client: CarrierClient) -> None:
        self._client = client

    async def account(self, customer_id: int) -> Account:
        base = f"/customers/{customer_id}"
        customer = await self._client.read(base, "Customer", cached=True)
        contacts = (await self._client.read(f"{base}/contacts", "ContactList"))["contacts"]
        pairs = ((ContactKind(c["kind"]), c["value"]) for c in contacts)
        return account_of(customer["name"], customer["cnpj"], customer["code"], pairs)

    async def call_tickets(self, customer_id: int | None, call_protocol: str) -> list[TicketLine]:
        if customer_id is None or not call_protocol:
            return []
        query = {"customer_id": str(customer_id), "call_protocol": call_protocol}
        tickets = (await self._client.read("/tickets", "TicketList", query))["tickets"]
        ours = (t for t in tickets if t["customer_id"] == customer_id and t["call_protocol"] == call_protocol)
        lines = [
            TicketLine(
                TicketKind(t["kind"]),
                t["number"],
                day(t["expected_date"], f"ticket {t['number']}") if t["expected_date"] else None,
            )
            for t in ours
        ]
        return sorted(lines, key=lambda line: line.number)  # ticket numbers grow with time

    async def invoice(self, customer_id: int, month: date | None) -> InvoiceRef | None:
        found = (await self._client.read(f"/customers/{customer_id}/invoices", "InvoiceList"))["invoices"]
        invoices = sorted(map(_invoice, found), key=lambda invoice: invoice.reference_month)
        if month is not None:
            invoices = [invoice for invoice in invoices if invoice.reference_month == month]
        return invoices[-1] if invoices else None

    async def document(self, invoice: InvoiceRef, kind: DocumentKind) -> Document | None:
        issued = invoice.nota_fiscal_number if isinstance(invoice, _CarrierInvoice) else ""
        number = issued if kind is DocumentKind.NOTA_FISCAL else ""
        if kind is DocumentKind.NOTA_FISCAL and not number:
            return None  # not issued yet
        line = await self.digitable_line(invoice) if kind is DocumentKind.BOLETO else ""
        try:
            content = await self._client.read_pdf(f"/invoices/{invoice.id}/{_FILES[kind]}")
        except NotFound:
            return None
        file_name = f"{kind.value}-{invoice.reference_month:%Y-%m}.pdf"
        return Document(number, line, Attachment(file_name, "application/pdf", content))

    async def digitable_line(self, invoice: InvoiceRef) -> str:
        try:
            found = await self._client.read(f"/invoices/{invoice.id}/digitable-line", "DigitableLine")
        except NotFound:
            return ""
        line: str = found["digitable_line"]
        return line

    def outbox_customer(self, customer_id: int | None) -> int | None:
        return None  # the carrier's customer ids are not our store's


def _invoice(invoice: dict[str, Any]) -> _CarrierInvoice:
    what = f"invoice {invoice['id']}"
    return _CarrierInvoice(
        id=invoice["id"],
        reference_month=day(invoice["reference_month"], what),
        due_date=day(invoice["due_date"], what),
        amount=money(invoice["amount"], what),
        status=InvoiceStatus(invoice["status"]),
        nota_fiscal_number=invoice.get("nota_fiscal_number") or "",
    )
