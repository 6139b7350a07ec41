"""The store's answers to the operations some caller journeys need beyond the account reads (declared in
`integrations.backend.Backend`; `integrations.builtin.operations.BuiltinOperations` derives from this class):

- ``attach_to_incident``: a caller reporting a failure on a circuit with a known outage joins the open
  failure ticket of that circuit (opened once for the first caller, never duplicated) (J4);
- ``latest_ticket(kind)``: the caller's latest request of a kind, e.g. a BGP request (J8);
- ``suspension_status``: whether a suspended service is a financial matter (overdue invoices) or a
  technical one (an open outage), with the overdue amount and due dates once the account is confirmed
  (J15).

Like `integrations.builtin.operations`, who the caller is comes only from `OperationContext`; every query is
filtered by the identified customer. Store failures become `BackendError`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, exists, or_, select
from sqlalchemy.orm import Session

from integrations.answers import suspension
from integrations.backend import Backend
from integrations.builtin.store import S, StoreOperations, newest_ticket, newest_ticket_answer
from ivr.domain import AccountStatus, InvoiceStatus, TicketKind, TicketState
from ivr.engine.operations import OperationContext, OperationResult
from ivr.protocol_number import make_ticket_number
from ivr.store.models import Circuit, Customer, Incident, Invoice, Ticket
from ivr.store.pointread import point_read
from ivr.store.sequences import TICKET, next_value

#: A failure ticket in these states is still being worked on: a new call joins it.
OPEN_STATES = (TicketState.OPEN, TicketState.IN_PROGRESS, TicketState.WAITING_CUSTOMER)
_LATEST_OF_KIND = newest_ticket_answer(Ticket.kind == bindparam("kind"))
_LATEST_OPEN = newest_ticket_answer(Ticket.state.in_(OPEN_STATES), Ticket.kind != TicketKind.CALLBACK_REQUEST)


class StoreJourneys(StoreOperations, Backend):
    """The journeys' operations answered from the store; the others:
    `integrations.builtin.operations.BuiltinOperations`."""

    async def attach_to_incident(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        now = self._clock()

        def write(session: Session) -> dict[str, Any] | None:
            incident = _first_open_incident(session, customer_id)
            if incident is None:
                return None
            expected: date | str = self._local_date(incident.expected_end_at) if incident.expected_end_at else ""
            ticket = newest_ticket(
                session,
                customer_id,
                Ticket.circuit_id == incident.circuit_id,
                Ticket.kind == TicketKind.TECHNICAL_FAILURE,
                Ticket.state.in_(OPEN_STATES),
            )
            opened = ticket is None
            if ticket is None:
                ticket = Ticket(
                    number=make_ticket_number(next_value(session.connection(), TICKET)),
                    customer_id=customer_id,
                    circuit_id=incident.circuit_id,
                    kind=TicketKind.TECHNICAL_FAILURE,
                    symptom="no_connection",
                    description=f"Falha conhecida: {incident.description}",
                    call_protocol=ctx.call_protocol or None,
                    created_at=now,
                    expected_date=expected or None,
                )
                session.add(ticket)
            note = f"Cliente ligou sobre esta falha (protocolo {ctx.call_protocol})."
            ticket.description = f"{ticket.description}\n{note}".strip()[-2000:]
            ticket.updated_at = now
            return {
                "number": ticket.number,
                "circuit": incident.circuit.designation,
                "expected_date": expected,
                "attached": "new" if opened else "existing",
                # Only a ticket opened on this call is listed for the agent as opened here.
                "ticket_number": ticket.number if opened else "",
                "ticket_kind": TicketKind.TECHNICAL_FAILURE.value if opened else "",
            }

        data = await self._write(write)
        return OperationResult.found(**data) if data else OperationResult.not_found("no outage on the account")

    async def latest_ticket(self, ctx: OperationContext, kind: TicketKind) -> OperationResult:
        data = await self._ticket(_LATEST_OF_KIND, customer_id=ctx.identified_customer, kind=kind)
        return OperationResult.found(**data) if data else OperationResult.not_found(f"no {kind.value} ticket")

    async def latest_open_ticket(self, ctx: OperationContext) -> OperationResult:
        data = await self._ticket(_LATEST_OPEN, customer_id=ctx.identified_customer)
        return OperationResult.found(**data) if data else OperationResult.not_found("no open ticket")

    async def suspension_status(self, ctx: OperationContext) -> OperationResult:
        customer_id = ctx.identified_customer
        confirmed = self.confirmed(ctx)
        today = self._local_date(self._clock())

        def read(conn: Connection) -> dict[str, Any]:
            values = {"customer_id": customer_id, "today": today}
            suspended = point_read(conn, _SUSPENDED, values).scalar_one()  # no such customer: NoResultFound
            overdue = point_read(conn, _OVERDUE, values).all()
            incident_circuit = point_read(conn, _FIRST_OPEN_INCIDENT_CIRCUIT, values).scalar()
            return suspension(
                suspended=suspended,
                overdue=[(due, amount) for due, amount in overdue],
                incident_circuit=incident_circuit or "",
                confirmed=confirmed,
            )

        return OperationResult.found(**await self._read(read))


def _first_open(query: S, customer_id: Any) -> S:
    """`query` (incidents joined to their circuits) narrowed to the customer's first open outage."""
    return (
        query.where(Circuit.customer_id == customer_id, Incident.resolved_at.is_(None))
        .order_by(Incident.started_at, Incident.id)
        .limit(1)
    )


# `suspension_status`'s reads, built once (integrations.builtin.store): whether the account or one of its
# circuits is suspended, its overdue invoices, the circuit of its first open outage.
_SUSPENDED = select(
    or_(
        Customer.status == AccountStatus.SUSPENDED,
        exists().where(Circuit.customer_id == Customer.id, Circuit.status == AccountStatus.SUSPENDED),
    )
).where(Customer.id == bindparam("customer_id"))
_OVERDUE = (
    select(Invoice.due_date, Invoice.amount)
    .where(
        Invoice.customer_id == bindparam("customer_id"),
        Invoice.status != InvoiceStatus.PAID,
        Invoice.due_date < bindparam("today"),
    )
    .order_by(Invoice.due_date)
)
_FIRST_OPEN_INCIDENT_CIRCUIT = _first_open(
    select(Circuit.designation).join(Incident, Incident.circuit_id == Circuit.id), bindparam("customer_id")
)


def _first_open_incident(session: Session, customer_id: int) -> Incident | None:
    return session.scalars(_first_open(select(Incident).join(Circuit), customer_id)).first()
