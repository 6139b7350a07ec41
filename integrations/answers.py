"""The results of the account read operations, shaped once for every adapter.

Each adapter turns its back-end's records into the small rows below; the functions here compute what
the flows get (counts, totals, the first few items, local dates and times), so the built-in store and
the carrier's HTTP systems give a flow the very same fields. Values are flat (str, int, Decimal, date;
"" when absent), usable in templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple

from ivr.domain import InvoiceLineKind, InvoiceStatus

LISTED_CIRCUITS = 3  # circuits() names the first few; a caller cannot take in more by ear

CIRCUIT_RESULTS = (
    "count",
    *(f"{field}_{i}" for i in range(1, LISTED_CIRCUITS + 1) for field in ("designation", "address")),
)
INVOICE_RESULTS = (
    "open_count",
    "overdue_count",
    "overdue_total",
    "next_due_date",
    "next_due_amount",
    "latest_month",
    "latest_amount",
    "latest_partial_total",
    "latest_discount_total",
)
#: What an operation answering about one ticket returns (ticket_status, latest_ticket, latest_open_ticket).
TICKET_RESULTS = (
    "number", "kind", "state", "circuit", "opened_on", "updated_on", "expected_date", "call_protocol",
)  # fmt: skip
INCIDENT_RESULTS = (
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
)


class CircuitRow(NamedTuple):
    designation: str
    address: str
    city: str


class InvoiceRow(NamedTuple):
    reference_month: date  # first day of the month billed
    amount: Decimal
    due_date: date
    status: InvoiceStatus
    lines: tuple[tuple[InvoiceLineKind, Decimal], ...]  # (kind, amount); discounts and credits negative


class IncidentRow(NamedTuple):
    circuit: str
    description: str
    expected_end: datetime | None


class WindowRow(NamedTuple):
    circuit: str
    starts: datetime
    ends: datetime


def circuits(rows: Sequence[CircuitRow]) -> dict[str, Any]:
    """`rows` sorted by designation."""
    data: dict[str, Any] = {"count": len(rows)}
    for i in range(LISTED_CIRCUITS):
        row = rows[i] if i < len(rows) else None
        data[f"designation_{i + 1}"] = row.designation if row else ""
        data[f"address_{i + 1}"] = f"{row.address}, {row.city}" if row else ""
    return data


def invoice_summary(invoices: Sequence[InvoiceRow], today: date) -> dict[str, Any]:
    """`invoices` sorted by reference month; `today` in the carrier's time zone."""
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
        "latest_discount_total": -_line_total(latest, {InvoiceLineKind.DISCOUNT, InvoiceLineKind.CREDIT}),
    }


def incidents(
    open_incidents: Sequence[IncidentRow], windows: Sequence[WindowRow], zone: tzinfo
) -> dict[str, Any] | None:
    """The first open incident and the first maintenance window (each sorted by start); None if neither."""
    if not open_incidents and not windows:
        return None
    first, window = (open_incidents[0] if open_incidents else None), (windows[0] if windows else None)
    end = first.expected_end if first else None
    return {
        "count": len(open_incidents),
        "circuit": first.circuit if first else "",
        "description": first.description if first else "",
        "expected_date": local_date(end, zone) if end else "",
        "expected_time": local_time(end, zone) if end else "",
        "maintenance_count": len(windows),
        "maintenance_circuit": window.circuit if window else "",
        "maintenance_date": local_date(window.starts, zone) if window else "",
        "maintenance_start": local_time(window.starts, zone) if window else "",
        "maintenance_end": local_time(window.ends, zone) if window else "",
    }


def local_date(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def local_time(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _line_total(invoice: InvoiceRow | None, kinds: set[InvoiceLineKind]) -> Decimal:
    if invoice is None:
        return Decimal("0.00")
    return sum((amount for kind, amount in invoice.lines if kind in kinds), Decimal("0.00"))


SUSPENSION_RESULTS = (
    "cause", "overdue_count", "overdue_total", "oldest_due_date", "latest_due_date", "incident_circuit",
)  # fmt: skip


def suspension(
    *, suspended: bool, overdue: Sequence[tuple[date, Decimal]], incident_circuit: str, confirmed: bool
) -> dict[str, Any]:
    """Why a service is suspended: financial (suspended with overdue invoices), technical (an open outage,
    on `incident_circuit`) or none. `overdue`: (due date, amount), oldest first. Amounts only to a
    confirmed account (DECISIONS.md)."""
    cause = "financial" if suspended and overdue else "technical" if incident_circuit else "none"
    money = confirmed and cause == "financial"
    return {
        "cause": cause,
        "overdue_count": len(overdue) if money else 0,
        "overdue_total": sum((amount for _, amount in overdue), Decimal("0.00")) if money else "",
        "oldest_due_date": overdue[0][0] if money else "",
        "latest_due_date": overdue[-1][0] if money else "",
        "incident_circuit": incident_circuit,
    }
