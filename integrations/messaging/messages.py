"""What the operations that message a customer (integrations.messaging.email_operations, whatsapp_operations)
share: where the account's registered contacts, invoices and documents come from (`MessagingSource`:
`StoreSource` here, `integrations.carrier.messaging.CarrierSource` for ``backend: http``), the outbox they
write to, the call's moment and an invoice's month as the customer reads them."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import NoResultFound, SQLAlchemyError

from integrations.builtin.store import StoreOperations
from integrations.messaging.outbox import Attachment, NewMessage, Outbox
from integrations.messaging.whatsapp import recipient
from ivr import email_address, phone
from ivr.clock import Clock
from ivr.domain import ContactKind, DocumentKind, InvoiceStatus, TicketKind
from ivr.engine.operations import BackendError, Operations
from ivr.store.db import StoreUnavailable
from ivr.store.models import Contact, Customer, Invoice, InvoiceDocument, Ticket
from ivr.store.pointread import point_read

log = logging.getLogger(__name__)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
MONTHS = (
    "janeiro", "fevereiro", "março", "abril", "maio", "junho",
    "julho", "agosto", "setembro", "outubro", "novembro", "dezembro",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Account:
    """The identified account and the contacts registered on it: the only places messages go."""

    name: str
    cnpj: str
    code: str
    emails: tuple[str, ...]
    whatsapp: tuple[str, ...]  # recipients (+<country><number>): WhatsApp numbers, else mobile phones


@dataclass(frozen=True, slots=True)
class InvoiceRef:
    id: int  # the source's own id (the store's, or the carrier's)
    reference_month: date
    due_date: date
    amount: Decimal
    status: InvoiceStatus


@dataclass(frozen=True, slots=True)
class Document:
    """A boleto or nota fiscal, and what the outbox attaches: a store document id (read when sent) or
    the file itself."""

    number: str  # nota fiscal number
    digitable_line: str  # boleto: 47 digits
    attachment: int | Attachment


@dataclass(frozen=True, slots=True)
class TicketLine:
    kind: TicketKind
    number: str
    expected_date: date | None


class MessagingSource(Protocol):
    """Where the messaging operations read the account's contacts and documents; every failure is a
    `BackendError` (the flow's ``error`` branch)."""

    async def account(self, customer_id: int) -> Account: ...

    async def call_tickets(self, customer_id: int | None, call_protocol: str) -> list[TicketLine]:
        """The tickets opened on the call, oldest first."""
        ...

    async def invoice(self, customer_id: int, month: date | None) -> InvoiceRef | None:
        """The invoice of `month` (from parse_month), or the latest one when it is None."""
        ...

    async def document(self, invoice: InvoiceRef, kind: DocumentKind) -> Document | None: ...

    async def digitable_line(self, invoice: InvoiceRef) -> str:
        """The boleto's digitable line; empty when the invoice has no boleto."""
        ...

    def outbox_customer(self, customer_id: int | None) -> int | None:
        """The id the outbox row refers to: a customer of our store, or None for another system's."""
        ...


# The account and its contacts in one statement (a customer without contacts: one row, kind None), and
# the tickets opened on a call: built once, as the call's other reads (integrations.builtin.store).
_ACCOUNT = (
    select(Customer.name, Customer.cnpj, Customer.code, Contact.kind, Contact.value)
    .outerjoin(Contact, Contact.customer_id == Customer.id)
    .where(Customer.id == bindparam("customer_id"))
    .order_by(Contact.id)
)
_CALL_TICKETS = (
    select(Ticket.kind, Ticket.number, Ticket.expected_date)
    .where(Ticket.call_protocol == bindparam("call_protocol"))
    .order_by(Ticket.id)
)
_LATEST_INVOICE = (  # the fields of an InvoiceRef, in its order
    select(Invoice.id, Invoice.reference_month, Invoice.due_date, Invoice.amount, Invoice.status)
    .where(Invoice.customer_id == bindparam("customer_id"))
    .order_by(Invoice.reference_month.desc())
    .limit(1)
)
_INVOICE_OF_MONTH = _LATEST_INVOICE.where(Invoice.reference_month == bindparam("month"))
_DOCUMENT = (  # the fields of a Document, in its order: the invoice's first document of the kind
    select(InvoiceDocument.number, InvoiceDocument.digitable_line, InvoiceDocument.id)
    .where(InvoiceDocument.invoice_id == bindparam("invoice_id"), InvoiceDocument.kind == bindparam("kind"))
    .order_by(InvoiceDocument.id)
    .limit(1)
)


class StoreSource(StoreOperations):
    """The accounts and documents of our own store (``backend: builtin``)."""

    async def account(self, customer_id: int) -> Account:
        def read(conn: Connection) -> Account:
            rows = point_read(conn, _ACCOUNT, {"customer_id": customer_id}).all()
            if not rows:
                raise NoResultFound(f"no customer {customer_id}")
            name, cnpj, code = rows[0][:3]
            return account_of(name, cnpj, code, ((kind, value) for *_, kind, value in rows if kind is not None))

        return await self._read(read)

    async def call_tickets(self, customer_id: int | None, call_protocol: str) -> list[TicketLine]:
        if not call_protocol:
            return []
        rows = await self._read(lambda conn: point_read(conn, _CALL_TICKETS, {"call_protocol": call_protocol}).all())
        return [TicketLine(kind, number, expected) for kind, number, expected in rows]

    async def invoice(self, customer_id: int, month: date | None) -> InvoiceRef | None:
        query, values = (_LATEST_INVOICE, {}) if month is None else (_INVOICE_OF_MONTH, {"month": month})
        found = await self._read(lambda conn: point_read(conn, query, {"customer_id": customer_id, **values}).first())
        return InvoiceRef(*found) if found else None

    async def document(self, invoice: InvoiceRef, kind: DocumentKind) -> Document | None:
        values = {"invoice_id": invoice.id, "kind": kind}
        found = await self._read(lambda conn: point_read(conn, _DOCUMENT, values).first())
        return Document(*found) if found else None

    async def digitable_line(self, invoice: InvoiceRef) -> str:
        document = await self.document(invoice, DocumentKind.BOLETO)
        return document.digitable_line if document else ""

    def outbox_customer(self, customer_id: int | None) -> int | None:
        return customer_id


def account_of(name: str, cnpj: str, code: str, contacts: Iterable[tuple[ContactKind, str]]) -> Account:
    """The account's e-mails, and its WhatsApp numbers (without any, its registered mobile phones), in
    registration order without repeats."""
    emails: list[str] = []
    whatsapp: list[str] = []
    mobiles: list[str] = []
    for kind, value in contacts:
        if kind is ContactKind.EMAIL:
            if email_address.is_one_address(value):
                emails.append(value.strip())
            else:  # nothing goes to a field of several addresses: whose they are is not ours to guess
                masked = email_address.mask_field(value)
                log.warning("a registered e-mail is not one address (%s): nothing is sent to it", masked)
            continue
        national = phone.normalise(value)
        number = recipient(national) if national else None
        if number is None:
            continue
        if kind is ContactKind.WHATSAPP:
            whatsapp.append(number)
        elif kind is ContactKind.PHONE and phone.is_mobile(national or ""):
            mobiles.append(number)
    chosen = whatsapp or mobiles
    return Account(name, cnpj, code, tuple(dict.fromkeys(emails)), tuple(dict.fromkeys(chosen)))


class CallAccounts:
    """The account a call's messages go to, read once a call: its protocol by e-mail, then by WhatsApp, then
    its written summary would each read the same account and contacts (a point read on the call's loop, or
    two requests to the carrier's systems). Kept by call protocol for the last `calls` calls (an LRU: a
    call's messages come within minutes); a failed read is not kept."""

    def __init__(self, source: MessagingSource, calls: int = 2048) -> None:
        self._source = source
        self._calls = calls
        self._accounts: OrderedDict[tuple[str, int], Account] = OrderedDict()

    async def read(self, call_protocol: str, customer_id: int) -> Account:
        key = (call_protocol, customer_id)
        account = self._accounts.get(key)
        if account is not None:
            self._accounts.move_to_end(key)
            return account
        account = await self._source.account(customer_id)
        if call_protocol:  # a call's (an operation run outside one reads afresh)
            self._accounts[key] = account
            if len(self._accounts) > self._calls:
                self._accounts.popitem(last=False)
        return account


class MessageOperations(Operations):
    """Reads the account (once a call, `CallAccounts`) and queues its messages in the outbox; the drainer
    sends later."""

    def __init__(
        self,
        source: MessagingSource,
        outbox: Outbox,
        *,
        accounts: CallAccounts,
        timezone: str,
        clock: Clock,
    ) -> None:
        self._source = source
        self._accounts = accounts
        self._outbox = outbox
        self._zone = ZoneInfo(timezone)
        self._clock = clock

    def _when(self) -> str:
        """Now, as the message says it: 10/03/2026 às 10:00."""
        now = self._clock().astimezone(self._zone)
        return f"{now:%d/%m/%Y} às {now:%H:%M}"

    async def _enqueue(self, *messages: NewMessage) -> None:
        try:
            await self._outbox.enqueue(*messages)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"outbox: {exc}") from exc


def parse_month(month: str) -> date | None:
    """The first day of a YYYY-MM month; None when `month` is empty (the latest invoice). ValueError
    with the message for the flow otherwise."""
    if not month.strip():
        return None
    match = _MONTH.fullmatch(month.strip())
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month {month!r} is not YYYY-MM")
    return date(int(match[1]), int(match[2]), 1)


def month_label(month: date) -> str:
    """março de 2026"""
    return f"{MONTHS[month.month - 1]} de {month.year}"
