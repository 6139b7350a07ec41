"""`point_read`: every statement a call reads through it gives what SQLAlchemy's execute gives, row for
row and type for type (enums, UTC datetimes, dates, decimals, booleans, the IN lists built into them), on
SQLite (pysqlite itself) and PostgreSQL (an ordinary execute)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoResultFound

from integrations.builtin import journeys, operations
from integrations.messaging import messages
from ivr.domain import DocumentKind
from ivr.engine.ports import ScopeKind
from ivr.protocol_number import NumberKind
from ivr.store import announcements
from ivr.store.db import Store
from ivr.store.models import Customer, Invoice, PostedAnnouncement, Ticket
from ivr.store.pointread import point_read
from ivr.store.seed import KNOWN_CALLER, seed

from .conftest import NOW

CALL_PATH = {
    "customers by phone": operations._CUSTOMERS_BY_PHONE,
    "customer by cnpj": operations._CUSTOMER_BY_CNPJ,
    "customers by cnpj root": operations._CUSTOMERS_BY_CNPJ_ROOT,
    "customer by code": operations._CUSTOMER_BY_CODE,
    "invoices": operations._INVOICES,
    "invoice lines": operations._INVOICE_LINES,
    "circuits": operations._CIRCUITS,
    "open incidents": operations._OPEN_INCIDENTS,
    "maintenance ahead": operations._WINDOWS_AHEAD,
    "identity summary": operations._SUMMARY,
    "ticket by number": operations._TICKET_BY[NumberKind.TICKET],
    "ticket by call protocol": operations._TICKET_BY[NumberKind.CALL_PROTOCOL],
    "suspended": journeys._SUSPENDED,
    "overdue": journeys._OVERDUE,
    "first open incident": journeys._FIRST_OPEN_INCIDENT_CIRCUIT,
    "latest ticket of a kind": journeys._LATEST_OF_KIND,
    "latest open ticket": journeys._LATEST_OPEN,
    "account": messages._ACCOUNT,
    "call's tickets": messages._CALL_TICKETS,
    "latest invoice": messages._LATEST_INVOICE,
    "invoice of a month": messages._INVOICE_OF_MONTH,
    "document": messages._DOCUMENT,
    "announcements in force": announcements._IN_FORCE,
    "customer's scopes": announcements._CUSTOMER_SCOPES,
}


def _values(conn: Connection) -> dict[str, Any]:
    """Every parameter of the call path's reads, for the seeded known caller's account."""
    customer = conn.execute(select(Customer.id, Customer.cnpj, Customer.cnpj_root, Customer.code)).first()
    ticket = conn.execute(
        select(Ticket.number, Ticket.call_protocol, Ticket.kind).where(Ticket.customer_id == customer.id)
    ).first()
    invoice = conn.execute(
        select(Invoice.id, Invoice.reference_month).where(Invoice.customer_id == customer.id)
    ).first()
    assert customer and ticket and invoice
    return {
        "customer_id": customer.id, "number": KNOWN_CALLER, "caller": KNOWN_CALLER, "cnpj": customer.cnpj,
        "root": customer.cnpj_root, "code": customer.code, "digits": ticket.number, "kind": ticket.kind,
        "call_protocol": ticket.call_protocol or "", "month": invoice.reference_month, "invoice_id": invoice.id,
        "now": NOW, "horizon": NOW + timedelta(days=30), "today": NOW.date(),
    }  # fmt: skip


def _both(conn: Connection) -> dict[str, tuple[list[Any], list[Any]]]:
    values = _values(conn)
    found = {}
    for name, statement in CALL_PATH.items():
        given = {**values, "kind": DocumentKind.BOLETO} if statement is messages._DOCUMENT else values
        expected = conn.execute(statement, given).all()
        found[name] = (expected, point_read(conn, statement, given).all())
    return found


async def test_each_read_of_the_call_path_gives_what_sqlalchemy_gives(store: Store) -> None:
    await seed(store, now=NOW)
    found = await store.lookup(_both)
    for name, (expected, got) in found.items():
        assert got == expected, name
        assert [row._fields for row in got] == [row._fields for row in expected], name
        assert [[type(v) for v in row] for row in got] == [[type(v) for v in row] for row in expected], name
    answered = [name for name, (expected, _) in found.items() if expected]
    assert len(answered) >= 15, f"too few reads found rows to compare: {answered}"


async def test_a_missing_row_is_no_result_and_a_scalar_none(store: Store) -> None:
    await seed(store, now=NOW)

    def read(conn: Connection) -> Any:
        assert point_read(conn, operations._CUSTOMER_BY_CNPJ, {"cnpj": "00000000000000"}).scalar() is None
        return point_read(conn, journeys._SUSPENDED, {"customer_id": -1}).scalar_one()

    try:
        await store.lookup(read)
    except NoResultFound:
        return
    raise AssertionError("no customer -1, yet a row")


async def test_parameters_are_bound_as_the_store_writes_them(store: Store) -> None:
    """An announcement that starts at this very moment is in force: the moment is compared as the column
    stores it (SQLAlchemy's UTC datetime), not as pysqlite would write a datetime by itself."""
    posted = PostedAnnouncement(
        text="Manutenção em Contagem", scope_kind=ScopeKind.ALL, starts_at=NOW, until=NOW + timedelta(hours=2),
        audio="a1b2c3", duration_s=4.2, created_by="supervisor", created_at=NOW,
    )  # fmt: skip
    await store.write(lambda session: session.add(posted))
    rows = await store.lookup(lambda conn: point_read(conn, announcements._IN_FORCE, {"now": NOW}).all())
    assert [(row.text, row.scope_kind, row.until) for row in rows] == [
        ("Manutenção em Contagem", ScopeKind.ALL, NOW + timedelta(hours=2))
    ]
