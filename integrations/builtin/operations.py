"""The built-in back-end: the flows' operations (`integrations.backend.Backend`) answered from our own
store (ivr/store); the journeys' ones are in `integrations.builtin.journeys`.

`build_registry(store)` registers them for calls. Every result is a flat mapping of str, int, Decimal or
date values ("" when a value is absent), usable in templates.

Who the caller is comes only from `OperationContext`: queries are filtered by the identified customer,
so an operation never returns another account's data whatever the flow passes. The identification and
confirmation rules live in `integrations.accounts` and the result shapes in `integrations.answers`,
shared with the HTTP back-end. Store failures become `BackendError` (the flow's ``error`` branch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Connection, and_, bindparam, exists, func, select
from sqlalchemy.orm import Session

from integrations import answers
from integrations.accounts import AccountSummary, pick_circuit, ticket_reference
from integrations.backend import MAINTENANCE_HORIZON
from integrations.builtin.deadlines import add_days
from integrations.builtin.deadlines import deadlines as answer_deadlines
from integrations.builtin.journeys import StoreJourneys
from integrations.builtin.store import newest_ticket_answer
from ivr import phone as phones
from ivr.clock import Clock
from ivr.config import Deadline, DeadlineSettings, ServicePage
from ivr.domain import ContactKind, InvoiceLineKind, TicketKind
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult
from ivr.protocol_number import NumberKind, make_ticket_number
from ivr.store.db import Store
from ivr.store.models import (
    Circuit,
    Contact,
    Customer,
    Incident,
    Invoice,
    InvoiceLine,
    Lead,
    MaintenanceWindow,
    Ticket,
)
from ivr.store.pointread import point_read
from ivr.store.sequences import TICKET, next_value

#: `ticket_status`'s statement per kind of number the caller keyed.
_TICKET_BY = {
    NumberKind.TICKET: newest_ticket_answer(Ticket.number == bindparam("digits")),
    NumberKind.CALL_PROTOCOL: newest_ticket_answer(Ticket.call_protocol == bindparam("digits")),
}


def build_registry(
    store: Store,
    *,
    clock: Clock,
    deadlines: Mapping[TicketKind, Deadline | None] | None = None,
    timezone: str,
) -> OperationRegistry:
    """The back-end's operations answered from `store`; tickets get the answer `deadlines` of their kind
    (default: the service page's and the regulation's, as the settings' defaults give them)."""
    due = deadlines if deadlines is not None else answer_deadlines(ServicePage(), DeadlineSettings())
    registry = OperationRegistry()
    registry.register_all(BuiltinOperations(store, deadlines=due, clock=clock, timezone=timezone))
    return registry


class BuiltinOperations(StoreJourneys):
    def __init__(
        self,
        store: Store,
        *,
        deadlines: Mapping[TicketKind, Deadline | None],
        clock: Clock,
        timezone: str,
    ) -> None:
        super().__init__(store, timezone=timezone, clock=clock)
        self._deadlines = deadlines

    # --- the account directory (integrations.accounts.Directory) ------------------------------------

    async def by_phone(self, number: str) -> list[int]:
        return await self._read(lambda conn: point_read(conn, _CUSTOMERS_BY_PHONE, {"number": number}).scalars())

    async def by_cnpj(self, cnpj: str) -> int | None:
        return await self._read(lambda conn: point_read(conn, _CUSTOMER_BY_CNPJ, {"cnpj": cnpj}).scalar())

    async def by_cnpj_root(self, root: str) -> list[int]:
        return await self._read(lambda conn: point_read(conn, _CUSTOMERS_BY_CNPJ_ROOT, {"root": root}).scalars())

    async def by_code(self, code: str) -> int | None:
        return await self._read(lambda conn: point_read(conn, _CUSTOMER_BY_CODE, {"code": code}).scalar())

    async def summary(self, customer_id: int, caller: str | None) -> AccountSummary:
        return await self._read(partial(_identity_summary, customer_id=customer_id, caller=caller))

    # --- tickets -----------------------------------------------------------------------------------

    async def ticket_status(self, ctx: OperationContext, number: str) -> OperationResult:
        reference = ticket_reference(ctx, number)
        if isinstance(reference, OperationResult):
            return reference
        query = _TICKET_BY[reference.kind]
        data = await self._ticket(query, customer_id=reference.customer_id, digits=reference.digits)
        return (
            OperationResult.found(**data)
            if data
            else OperationResult.not_found("no such ticket on this account")
        )

    async def _open_ticket(
        self,
        ctx: OperationContext,
        kind: TicketKind,
        *,
        circuit: str = "",
        symptom: str = "",
        description: str = "",
        callback_number: str | None = None,
    ) -> OperationResult:
        now = self._clock()
        today = self._local_date(now)

        def write(session: Session) -> dict[str, Any] | None:
            circuit_row = None
            if ctx.customer_id is not None:
                circuit_row = _circuit_of(session, ctx.customer_id, circuit)
                if circuit and circuit_row is None:
                    return None
            deadline = self._deadlines[kind]
            expected = add_days(today, deadline) if deadline else None
            if kind is TicketKind.TECHNICAL_FAILURE and circuit_row is not None:
                outage_end = _open_incident_end(session, circuit_row.id)
                if outage_end is not None:  # the outage's own forecast: the repair comes no sooner
                    expected = max(expected or date.min, self._local_date(outage_end))
            ticket = Ticket(
                number=make_ticket_number(next_value(session.connection(), TICKET)),
                customer_id=ctx.customer_id,
                circuit_id=circuit_row.id if circuit_row else None,
                kind=kind,
                symptom=symptom[:80],
                description=description[:2000],
                call_protocol=ctx.call_protocol or None,
                callback_number=callback_number,
                created_at=now,
                updated_at=now,
                expected_date=expected,
            )
            session.add(ticket)
            return {"number": ticket.number, "kind": kind.value, "expected_date": expected or ""}

        data = await self._write(write)
        if data is None:
            return OperationResult.not_found("no such circuit on this account")
        # ticket_number/ticket_kind: the engine lists tickets opened during the call for the agent.
        return OperationResult.found(**data, ticket_number=data["number"], ticket_kind=data["kind"])

    # --- billing -----------------------------------------------------------------------------------

    async def invoice_summary(self, ctx: OperationContext) -> OperationResult:
        today = self._local_date(self._clock())
        customer_id = ctx.identified_customer

        def read(conn: Connection) -> list[answers.InvoiceRow]:
            values = {"customer_id": customer_id}
            lines: dict[int, list[tuple[InvoiceLineKind, Decimal]]] = {}
            for invoice_id, kind, amount in point_read(conn, _INVOICE_LINES, values):
                lines.setdefault(invoice_id, []).append((kind, amount))
            return [
                answers.InvoiceRow(month, amount, due, status, tuple(lines.get(invoice_id, ())))
                for invoice_id, month, amount, due, status in point_read(conn, _INVOICES, values)
            ]

        return OperationResult.found(**answers.invoice_summary(await self._read(read), today))

    # --- circuits and incidents --------------------------------------------------------------------

    async def circuits(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer

        def read(conn: Connection) -> list[answers.CircuitRow]:
            rows = point_read(conn, _CIRCUITS, {"customer_id": customer_id})
            return [answers.CircuitRow(designation, address, city) for designation, address, city in rows]

        return OperationResult.found(**answers.circuits(await self._read(read)))

    async def open_incidents(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        now = self._clock()

        def read(conn: Connection) -> dict[str, Any] | None:
            values = {"customer_id": customer_id, "now": now, "horizon": now + MAINTENANCE_HORIZON}
            return answers.incidents(
                [answers.IncidentRow(*row) for row in point_read(conn, _OPEN_INCIDENTS, values)],
                [answers.WindowRow(*row) for row in point_read(conn, _WINDOWS_AHEAD, values)],
                self._zone,
            )

        data = await self._read(read)
        return (
            OperationResult.found(**data) if data else OperationResult.not_found("no incident or maintenance")
        )

    # --- leads -------------------------------------------------------------------------------------

    async def register_lead(self, ctx: OperationContext, name: str = "", phone: str = "") -> OperationResult:
        number = phones.normalise(phone or ctx.caller_id)
        if number is None:
            return OperationResult.not_found("no phone number to call back")
        lead = Lead(name=name.strip()[:200], phone=number, call_protocol=ctx.call_protocol or None)
        lead.created_at = self._clock()

        def write(session: Session) -> int:
            session.add(lead)
            session.flush()
            return lead.id

        return OperationResult.found(lead_id=await self._write(write), phone=number)


def _phone_is(number: BindParameter[str]) -> ColumnElement[bool]:
    """A contact that is the phone (or WhatsApp) number `number`."""
    return and_(Contact.kind.in_((ContactKind.PHONE, ContactKind.WHATSAPP)), Contact.value == number)


# The reads below are built once (every call runs some): building a statement costs about as much CPU
# as running it (integrations.builtin.store).
_CUSTOMERS_BY_PHONE = select(Contact.customer_id).where(_phone_is(bindparam("number"))).distinct()
_CUSTOMER_BY_CNPJ = select(Customer.id).where(Customer.cnpj == bindparam("cnpj"))
_CUSTOMERS_BY_CNPJ_ROOT = select(Customer.id).where(Customer.cnpj_root == bindparam("root"))
_CUSTOMER_BY_CODE = select(Customer.id).where(Customer.code == bindparam("code"))
_INVOICES = (
    select(Invoice.id, Invoice.reference_month, Invoice.amount, Invoice.due_date, Invoice.status)
    .where(Invoice.customer_id == bindparam("customer_id"))
    .order_by(Invoice.reference_month)
)
_INVOICE_LINES = (  # each invoice's lines in the order they were billed (Invoice.lines)
    select(InvoiceLine.invoice_id, InvoiceLine.kind, InvoiceLine.amount)
    .join(Invoice, InvoiceLine.invoice_id == Invoice.id)
    .where(Invoice.customer_id == bindparam("customer_id"))
    .order_by(InvoiceLine.id)
)
_CIRCUITS = (
    select(Circuit.designation, Circuit.address, Circuit.city)
    .where(Circuit.customer_id == bindparam("customer_id"))
    .order_by(Circuit.designation)
)
_OPEN_INCIDENTS = (
    select(Circuit.designation, Incident.description, Incident.expected_end_at)
    .join(Circuit, Incident.circuit_id == Circuit.id)
    .where(Circuit.customer_id == bindparam("customer_id"), Incident.resolved_at.is_(None))
    .order_by(Incident.started_at)
)
_WINDOWS_AHEAD = (  # maintenance not over yet that starts within the horizon
    select(Circuit.designation, MaintenanceWindow.starts_at, MaintenanceWindow.ends_at)
    .join(Circuit, MaintenanceWindow.circuit_id == Circuit.id)
    .where(
        Circuit.customer_id == bindparam("customer_id"),
        MaintenanceWindow.ends_at >= bindparam("now"),
        MaintenanceWindow.starts_at <= bindparam("horizon"),
    )
    .order_by(MaintenanceWindow.starts_at)
)
#: Who the account is, in one statement: its name and status, how many circuits, whether `caller` is its.
_SUMMARY = select(
    Customer.name,
    Customer.status,
    select(func.count()).where(Circuit.customer_id == Customer.id).scalar_subquery(),
    exists().where(Contact.customer_id == Customer.id, _phone_is(bindparam("caller"))),
).where(Customer.id == bindparam("customer_id"))


def _identity_summary(conn: Connection, *, customer_id: int, caller: str | None) -> AccountSummary:
    values = {"customer_id": customer_id, "caller": caller}
    name, status, circuits, registered = point_read(conn, _SUMMARY, values).one()
    return AccountSummary(
        name=name,
        status=status.value,
        circuit_count=circuits,
        caller_registered=caller is not None and bool(registered),
    )


def _circuit_of(session: Session, customer_id: int, ref: str) -> Circuit | None:
    rows: Sequence[Circuit] = session.scalars(
        select(Circuit).where(Circuit.customer_id == customer_id).order_by(Circuit.designation)
    ).all()
    return pick_circuit(rows, ref, lambda row: row.designation)


def _open_incident_end(session: Session, circuit_id: int) -> datetime | None:
    return session.scalar(
        select(func.max(Incident.expected_end_at)).where(
            Incident.circuit_id == circuit_id, Incident.resolved_at.is_(None)
        )
    )

