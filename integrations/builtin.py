"""The built-in adapter: flow operations answered from our own store (ivr/store).

`build_registry(store)` binds the operations to a store; `declared_registry()` declares the same
operations without a store (for `ivr flow check`). Every result is a flat mapping of str, int,
Decimal or date values ("" when a value is absent), usable in templates.

Who the caller is comes only from `OperationContext`: queries are filtered by the identified
customer, so an operation never returns another account's data whatever the flow passes. Amounts,
document requests, disputes and cancellations need a *confirmed* account: two different factors
(registered caller ID, CNPJ or its root, customer code) pointing to the same customer during the call.
The factors seen on each call are kept here, by call protocol, so keying the (public) CNPJ twice
confirms nothing. Store failures become `BackendError` (the flow's ``error`` branch).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from integrations.builtin_deadlines import add_days, deadlines
from integrations.registry import (
    Arg,
    BackendError,
    OperationContext,
    OperationRegistry,
    OperationResult,
    OperationSpec,
    OperationStatus,
)
from ivr import cnpj as cnpj_rules
from ivr import phone as phones
from ivr.protocol_number import NumberKind, kind_of, make_ticket_number
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import (
    Circuit,
    Contact,
    ContactKind,
    Customer,
    Incident,
    Invoice,
    InvoiceLineKind,
    InvoiceStatus,
    Lead,
    MaintenanceWindow,
    Ticket,
    TicketKind,
)
from ivr.store.sequences import TICKET, next_value

T = TypeVar("T")

IDENTITY = ("customer_id", "confirmed", "customer_name", "account_status", "circuit_count")
LISTED_CIRCUITS = 3  # circuits() names the first few; a caller cannot take in more by ear
MAINTENANCE_HORIZON = timedelta(days=7)
# Opened without an identified account (a caller who is not a customer may complain or ask a callback).
UNIDENTIFIED_KINDS = frozenset({TicketKind.COMPLAINT, TicketKind.CALLBACK_REQUEST})
CONFIRMED_KINDS = frozenset(
    {
        TicketKind.BOLETO_COPY,
        TicketKind.NOTA_FISCAL_COPY,
        TicketKind.BILLING_DISPUTE,
        TicketKind.CANCELLATION,
        TicketKind.DUE_DATE_CHANGE,
    }
)
_FACTORS_KEPT = 10_000  # calls whose identification factors are remembered (oldest forgotten first)


_SPECS: tuple[tuple[str, str, tuple[Arg, ...], tuple[str, ...], bool], ...] = (
    (
        "customer_by_caller_id",
        "Identify the caller by the number they call from (no input).",
        (),
        IDENTITY,
        True,
    ),
    (
        "customer_by_cnpj",
        "Identify (or confirm) the account by CNPJ, or by its 8-character root once a customer is known.",
        (Arg("cnpj", str, description="CNPJ (digits or letters) or its root"),),
        IDENTITY,
        True,
    ),
    (
        "customer_by_code",
        "Identify (or confirm) the account by customer code.",
        (Arg("code", str, description="customer code, digits"),),
        IDENTITY,
        True,
    ),
    (
        "ticket_status",
        "State of one of the caller's tickets, by ticket number or by the call protocol it was opened on.",
        (Arg("number", str, description="ticket number (9 digits) or call protocol (12 digits)"),),
        ("number", "kind", "state", "circuit", "opened_on", "updated_on", "expected_date", "call_protocol"),
        False,
    ),
    (
        "open_ticket",
        "Open a ticket of the given kind on the caller's account, linked to this call's protocol.",
        (
            Arg("kind", str, description="technical_failure, service_request, billing_doubt, ..."),
            Arg("circuit", str, required=False, description="circuit designation or its position (1, 2...)"),
            Arg("symptom", str, required=False, description="e.g. no_connection, slow, intermittent"),
            Arg("description", str, required=False, description="the caller's words"),
        ),
        ("number", "kind", "expected_date", "ticket_number", "ticket_kind"),
        False,
    ),
    (
        "invoice_summary",
        "Open and overdue invoices of the confirmed account, the next due date and the latest invoice.",
        (),
        (
            "open_count",
            "overdue_count",
            "overdue_total",
            "next_due_date",
            "next_due_amount",
            "latest_month",
            "latest_amount",
            "latest_partial_total",
            "latest_discount_total",
        ),
        False,
    ),
    (
        "circuits",
        "How many circuits the caller's account has, and the first few designations and addresses.",
        (),
        (
            "count",
            *(f"{field}_{i}" for i in range(1, LISTED_CIRCUITS + 1) for field in ("designation", "address")),
        ),
        False,
    ),
    (
        "open_incidents",
        "Known outages and planned maintenance (next days) on the caller's circuits; not_found if none.",
        (),
        (
            "count",
            "circuit",
            "description",
            "expected_date",
            "expected_time",
            "maintenance_count",
            "maintenance_circuit",
            "maintenance_date",
            "maintenance_start",
            "maintenance_end",
        ),
        False,
    ),
    (
        "register_lead",
        "Record a prospective customer for the commercial team to call back (default: the caller's number).",
        (
            Arg("name", str, required=False),
            Arg("phone", str, required=False, description="number to call back"),
        ),
        ("lead_id", "phone"),
        False,
    ),
)


def declared_registry() -> OperationRegistry:
    """The built-in operations without a store: names, arguments and results for `ivr flow check`."""

    async def unbound(ctx: OperationContext, **args: Any) -> OperationResult:
        raise BackendError("declared_registry() has no store; use build_registry(store)")

    return _registry(lambda name: unbound)


def build_registry(
    store: Store, *, clock: Callable[[], datetime] | None = None, timezone: str | None = None
) -> OperationRegistry:
    """The built-in operations answered from `store`."""
    operations = BuiltinOperations(store, clock=clock, timezone=timezone)
    return _registry(lambda name: getattr(operations, name))


def _registry(handler_for: Callable[[str], Callable[..., Awaitable[OperationResult]]]) -> OperationRegistry:
    registry = OperationRegistry()
    for name, description, args, results, identifies in _SPECS:
        registry.register(OperationSpec(name, description, args, results, handler_for(name), identifies))
    return registry


@dataclass(frozen=True, slots=True)
class _Identity:
    customer_id: int
    factors: frozenset[str]


class BuiltinOperations:
    def __init__(
        self, store: Store, *, clock: Callable[[], datetime] | None = None, timezone: str | None = None
    ) -> None:
        if timezone is None:
            from ivr.config import settings

            timezone = settings().timezone
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._zone = ZoneInfo(timezone)
        self._deadlines = deadlines()
        self._identities: OrderedDict[str, _Identity] = OrderedDict()

    # --- identification ----------------------------------------------------------------------------

    async def customer_by_caller_id(self, ctx: OperationContext) -> OperationResult:
        number = phones.normalise(ctx.caller_id)
        if number is None:
            return OperationResult.not_found("caller ID withheld or not a number")
        ids = await self._read(partial(_customers_by_phone, number=number))
        if len(ids) != 1:
            return OperationResult.not_found(f"number {phones.mask(number)} is on {len(ids)} accounts")
        return await self._identified(ctx, ids[0], "caller_id")

    async def customer_by_cnpj(self, ctx: OperationContext, cnpj: str) -> OperationResult:
        value = cnpj_rules.normalise(cnpj)
        if len(value) == 14 and cnpj_rules.is_valid(value):
            found = await self._read(lambda s: s.scalar(select(Customer.id).where(Customer.cnpj == value)))
        elif len(value) == 8:
            found = await self._read(partial(_customer_by_root, root=value, known=ctx.customer_id))
        else:
            return OperationResult.not_found("not a valid CNPJ or CNPJ root")
        if found is None:
            return OperationResult.not_found(f"no account for CNPJ {cnpj_rules.mask(value)}")
        return await self._identified(ctx, found, "cnpj")

    async def customer_by_code(self, ctx: OperationContext, code: str) -> OperationResult:
        value = re.sub(r"[\s.\-/]", "", code)
        if not value:
            return OperationResult.not_found("empty customer code")
        found = await self._read(lambda s: s.scalar(select(Customer.id).where(Customer.code == value)))
        if found is None:
            return OperationResult.not_found("no account for this customer code")
        return await self._identified(ctx, found, "code")

    async def _identified(self, ctx: OperationContext, customer_id: int, factor: str) -> OperationResult:
        """Record one more factor for this call's customer; two different factors confirm the account."""
        previous = self._identities.get(ctx.call_protocol)
        factors = {factor}
        if previous is not None and previous.customer_id == customer_id:
            factors |= previous.factors
        number = phones.normalise(ctx.caller_id)
        summary = await self._read(partial(_identity_summary, customer_id=customer_id, caller=number))
        if summary.pop("caller_registered"):
            factors.add("caller_id")
        self._identities[ctx.call_protocol] = _Identity(customer_id, frozenset(factors))
        self._identities.move_to_end(ctx.call_protocol)
        while len(self._identities) > _FACTORS_KEPT:
            self._identities.popitem(last=False)
        return OperationResult.found(customer_id=customer_id, confirmed=len(factors) >= 2, **summary)

    def _confirmed(self, ctx: OperationContext) -> bool:
        """Confirmed by the engine and by the factors seen here for the very same customer."""
        identity = self._identities.get(ctx.call_protocol)
        return (
            ctx.account_confirmed
            and identity is not None
            and identity.customer_id == ctx.customer_id
            and len(identity.factors) >= 2
        )

    # --- tickets -----------------------------------------------------------------------------------

    async def ticket_status(self, ctx: OperationContext, number: str) -> OperationResult:
        digits = re.sub(r"\D", "", number)
        kind = kind_of(digits)
        if kind is None:
            return OperationResult.not_found("not a valid ticket or protocol number")
        if ctx.customer_id is None:
            return OperationResult.not_found("caller not identified")
        column = Ticket.number if kind is NumberKind.TICKET else Ticket.call_protocol
        query = (
            select(Ticket)
            .where(column == digits, Ticket.customer_id == ctx.customer_id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(1)
        )

        def read(session: Session) -> dict[str, Any] | None:
            ticket = session.scalars(query).first()
            if ticket is None:
                return None
            return {
                "number": ticket.number,
                "kind": ticket.kind.value,
                "state": ticket.state.value,
                "circuit": ticket.circuit.designation if ticket.circuit else "",
                "opened_on": self._local_date(ticket.created_at),
                "updated_on": self._local_date(ticket.updated_at),
                "expected_date": ticket.expected_date or "",
                "call_protocol": ticket.call_protocol or "",
            }

        data = await self._read(read)
        return (
            OperationResult.found(**data)
            if data
            else OperationResult.not_found("no such ticket on this account")
        )

    async def open_ticket(
        self, ctx: OperationContext, kind: str, circuit: str = "", symptom: str = "", description: str = ""
    ) -> OperationResult:
        try:
            ticket_kind = TicketKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in TicketKind)
            return OperationResult(
                OperationStatus.ERROR, {}, f"unknown ticket kind {kind!r} (expected {known})"
            )
        if ctx.customer_id is None and ticket_kind not in UNIDENTIFIED_KINDS:
            return OperationResult.not_found("caller not identified")
        if ticket_kind in CONFIRMED_KINDS and not self._confirmed(ctx):
            return OperationResult.not_found("account not confirmed")
        now = self._clock()
        today = self._local_date(now)

        def write(session: Session) -> dict[str, Any] | None:
            circuit_row = None
            if ctx.customer_id is not None:
                circuit_row = _circuit_of(session, ctx.customer_id, circuit)
                if circuit and circuit_row is None:
                    return None
            expected = add_days(today, self._deadlines[ticket_kind])
            if ticket_kind is TicketKind.TECHNICAL_FAILURE and circuit_row is not None:
                outage_end = _open_incident_end(session, circuit_row.id)
                if outage_end is not None:
                    expected = max(expected, self._local_date(outage_end))
            ticket = Ticket(
                number=make_ticket_number(next_value(session, TICKET)),
                customer_id=ctx.customer_id,
                circuit_id=circuit_row.id if circuit_row else None,
                kind=ticket_kind,
                symptom=symptom[:80],
                description=description[:2000],
                call_protocol=ctx.call_protocol or None,
                created_at=now,
                updated_at=now,
                expected_date=expected,
            )
            session.add(ticket)
            return {"number": ticket.number, "kind": ticket_kind.value, "expected_date": expected}

        data = await self._write(write)
        if data is None:
            return OperationResult.not_found("no such circuit on this account")
        # ticket_number/ticket_kind: the engine lists tickets opened during the call for the agent.
        return OperationResult.found(**data, ticket_number=data["number"], ticket_kind=data["kind"])

    # --- billing -----------------------------------------------------------------------------------

    async def invoice_summary(self, ctx: OperationContext) -> OperationResult:
        if ctx.customer_id is None or not self._confirmed(ctx):
            return OperationResult.not_found("account not confirmed")
        today = self._local_date(self._clock())
        customer_id = ctx.customer_id

        def read(session: Session) -> dict[str, Any]:
            invoices = session.scalars(
                select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.reference_month)
            ).all()
            unpaid = [i for i in invoices if i.status is not InvoiceStatus.PAID]
            overdue = [i for i in unpaid if i.due_date < today]
            upcoming = sorted((i for i in unpaid if i.due_date >= today), key=lambda i: i.due_date)
            latest = invoices[-1] if invoices else None
            return {
                "open_count": len(upcoming),
                "overdue_count": len(overdue),
                "overdue_total": sum((i.amount for i in overdue), Decimal("0.00")),
                "next_due_date": upcoming[0].due_date if upcoming else "",
                "next_due_amount": upcoming[0].amount if upcoming else "",
                "latest_month": latest.reference_month if latest else "",
                "latest_amount": latest.amount if latest else "",
                "latest_partial_total": _line_total(latest, {InvoiceLineKind.PARTIAL}),
                "latest_discount_total": -_line_total(
                    latest, {InvoiceLineKind.DISCOUNT, InvoiceLineKind.CREDIT}
                ),
            }

        return OperationResult.found(**await self._read(read))

    # --- circuits and incidents --------------------------------------------------------------------

    async def circuits(self, ctx: OperationContext) -> OperationResult:
        if ctx.customer_id is None:
            return OperationResult.not_found("caller not identified")
        customer_id = ctx.customer_id

        def read(session: Session) -> dict[str, Any]:
            rows = session.scalars(
                select(Circuit).where(Circuit.customer_id == customer_id).order_by(Circuit.designation)
            ).all()
            data: dict[str, Any] = {"count": len(rows)}
            for i in range(LISTED_CIRCUITS):
                row = rows[i] if i < len(rows) else None
                data[f"designation_{i + 1}"] = row.designation if row else ""
                data[f"address_{i + 1}"] = f"{row.address}, {row.city}" if row else ""
            return data

        return OperationResult.found(**await self._read(read))

    async def open_incidents(self, ctx: OperationContext) -> OperationResult:
        if ctx.customer_id is None:
            return OperationResult.not_found("caller not identified")
        customer_id = ctx.customer_id
        now = self._clock()

        def read(session: Session) -> dict[str, Any] | None:
            incidents = session.scalars(
                select(Incident)
                .join(Circuit)
                .where(Circuit.customer_id == customer_id, Incident.resolved_at.is_(None))
                .order_by(Incident.started_at)
            ).all()
            windows = session.scalars(
                select(MaintenanceWindow)
                .join(Circuit)
                .where(
                    Circuit.customer_id == customer_id,
                    MaintenanceWindow.ends_at >= now,
                    MaintenanceWindow.starts_at <= now + MAINTENANCE_HORIZON,
                )
                .order_by(MaintenanceWindow.starts_at)
            ).all()
            if not incidents and not windows:
                return None
            first, window = (incidents[0] if incidents else None), (windows[0] if windows else None)
            end = first.expected_end_at if first else None
            return {
                "count": len(incidents),
                "circuit": first.circuit.designation if first else "",
                "description": first.description if first else "",
                "expected_date": self._local_date(end) if end else "",
                "expected_time": self._local_time(end) if end else "",
                "maintenance_count": len(windows),
                "maintenance_circuit": window.circuit.designation if window else "",
                "maintenance_date": self._local_date(window.starts_at) if window else "",
                "maintenance_start": self._local_time(window.starts_at) if window else "",
                "maintenance_end": self._local_time(window.ends_at) if window else "",
            }

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

    # --- plumbing ----------------------------------------------------------------------------------

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self._zone).date()

    def _local_time(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%H:%M")

    async def _read(self, fn: Callable[[Session], T]) -> T:
        try:
            return await self._store.read(fn)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"store: {exc}") from exc

    async def _write(self, fn: Callable[[Session], T]) -> T:
        try:
            return await self._store.write(fn)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"store: {exc}") from exc


def _customers_by_phone(session: Session, *, number: str) -> list[int]:
    query = (
        select(Contact.customer_id)
        .where(Contact.kind.in_((ContactKind.PHONE, ContactKind.WHATSAPP)), Contact.value == number)
        .distinct()
    )
    return list(session.scalars(query))


def _customer_by_root(session: Session, *, root: str, known: int | None) -> int | None:
    """A root confirms the customer already known on the call; alone it must match one customer."""
    ids = list(session.scalars(select(Customer.id).where(Customer.cnpj_root == root)))
    if known is not None and known in ids:
        return known
    return ids[0] if len(ids) == 1 else None


def _identity_summary(session: Session, *, customer_id: int, caller: str | None) -> dict[str, Any]:
    customer = session.get_one(Customer, customer_id)
    circuits = session.scalar(select(func.count()).where(Circuit.customer_id == customer_id))
    return {
        "customer_name": customer.name,
        "account_status": customer.status.value,
        "circuit_count": int(circuits or 0),
        "caller_registered": caller is not None
        and customer_id in _customers_by_phone(session, number=caller),
    }


def _circuit_of(session: Session, customer_id: int, ref: str) -> Circuit | None:
    """The customer's circuit by designation or by its position (1-based, by designation); with no
    reference, the customer's only circuit if there is just one."""
    rows = session.scalars(
        select(Circuit).where(Circuit.customer_id == customer_id).order_by(Circuit.designation)
    ).all()
    ref = ref.strip()
    if not ref:
        return rows[0] if len(rows) == 1 else None
    if ref.isdigit() and len(ref) <= 2:
        index = int(ref) - 1
        return rows[index] if 0 <= index < len(rows) else None
    return next((row for row in rows if row.designation.upper() == ref.upper()), None)


def _open_incident_end(session: Session, circuit_id: int) -> datetime | None:
    return session.scalar(
        select(func.max(Incident.expected_end_at)).where(
            Incident.circuit_id == circuit_id, Incident.resolved_at.is_(None)
        )
    )


def _line_total(invoice: Invoice | None, kinds: set[InvoiceLineKind]) -> Decimal:
    if invoice is None:
        return Decimal("0.00")
    return sum((line.amount for line in invoice.lines if line.kind in kinds), Decimal("0.00"))
