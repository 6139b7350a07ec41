"""`point_read`: every statement a call reads through it gives what SQLAlchemy's execute gives, row for
row and type for type (enums, UTC datetimes, dates, decimals, booleans, the IN lists built into them), on
SQLite (pysqlite itself) and PostgreSQL (an ordinary execute)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, NoResultFound

from integrations.builtin import journeys, operations
from integrations.messaging import messages, outbox
from ivr.domain import DocumentKind
from ivr.engine.ports import CallInfo, NodeVisit, ScopeKind
from ivr.protocol_number import NumberKind
from ivr.store import announcements, calls, events
from ivr.store.db import Store
from ivr.store.models import Call, Customer, Invoice, OutboxChannel, OutboxMessage, PostedAnnouncement, Ticket
from ivr.store.models import NodeVisit as NodeVisitRow
from ivr.store.pointread import Inserted, insert_rows, point_read
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



# --- inserts -------------------------------------------------------------------------------------------

PROTOCOL = "260310000001"


def _call_path_inserts(dialect: str, customer_id: int) -> list[tuple[Inserted, list[dict[str, Any]]]]:
    """Each insert of the call path with rows as the call path builds them: a call's start, its visits, its
    end (the upsert's update), its two messages."""
    at = NOW.astimezone(ZoneInfo("America/Sao_Paulo"))  # an aware time of another zone: stored as UTC
    info = CallInfo("31 3333-4444", dialled="30033336", unique_id="1757.1", linked_id="1757.1", channel_name="PJSIP/a")
    visits = [
        events._Visit(NodeVisit(PROTOCOL, "sac", "v7", node, "menu", keys, "2", at, 1250, prompts)).row()
        for node, keys, prompts in (("main_menu", "2", ("menu_main", "digit_2")), ("bye", "", ()))
    ]
    ended = calls._CallEnded(PROTOCOL, "queued:technical", {"team": "technical", "n": 2}, customer_id,
                             "Provedor\u00a0Ltda", NOW)  # fmt: skip
    messages = [
        {
            "channel": OutboxChannel.EMAIL, "recipient": "noc@example.com.br", "template": "call_protocol",
            "subject": "Protocolo", "body": "Seu protocolo é 260310000001.", "attachments": [7, {"file_name": "a.pdf"}],
            "customer_id": customer_id, "call_protocol": PROTOCOL, "created_at": NOW, "next_attempt_at": at,
        },
        {
            "channel": OutboxChannel.WHATSAPP, "recipient": "5531999990000", "template": "call_protocol",
            "subject": "", "body": "Protocolo 260310000001", "attachments": [], "customer_id": None,
            "call_protocol": None, "created_at": NOW, "next_attempt_at": NOW,
        },
    ]  # fmt: skip
    return [
        (calls._upsert(dialect, calls._STARTED), [calls._CallStarted(PROTOCOL, info, "sac", "v7", at).row()]),
        (events._insert_visits(dialect), visits),
        (calls._upsert(dialect, calls._ENDED), [ended.row()]),
        (outbox._INSERT, messages),
    ]


def _stored(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The call's rows as the database keeps them (SQLite's text for times and JSON), ids left out."""
    found = {}
    for table in (Call.__table__, NodeVisitRow.__table__, OutboxMessage.__table__):
        columns = ", ".join(c.name for c in table.columns if c.name != "id")
        stored = conn.exec_driver_sql(f"SELECT {columns} FROM {table.name} ORDER BY id")
        found[table.name] = [tuple(row) for row in stored]
    return found


async def test_each_insert_of_the_call_path_stores_what_sqlalchemy_stores(store: Store) -> None:
    """The defaults of the columns a row does not give included; RETURNING's ids in the rows' order."""
    await seed(store, now=NOW)

    def both(conn: Connection) -> list[tuple[dict[str, list[Any]], list[Any]]]:
        customer_id = conn.execute(select(Customer.id)).scalars().first()
        inserts = _call_path_inserts(conn.dialect.name, customer_id)

        def by_sqlalchemy(statement: Inserted, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            result = conn.execute(statement, rows)
            return [tuple(row) for row in result] if result.returns_rows else []

        found = []
        for write in (by_sqlalchemy, partial(insert_rows, conn)):
            with conn.begin_nested() as undo:
                returned = [write(statement, rows) for statement, rows in inserts]
                newest = conn.execute(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(2)).scalars()
                found.append((_stored(conn), returned, sorted(newest)))
                undo.rollback()
        return found

    (expected, expected_returned, _), (got, returned, newest) = await store.run_with_connection(both)
    assert got == expected
    assert [len(r) for r in returned] == [len(r) for r in expected_returned] == [0, 0, 0, 2]
    assert [message_id for (message_id,) in returned[3]] == newest  # each message's id, in the rows' order
    assert sum(row[0] == PROTOCOL for row in got["node_visits"]) == 2


async def test_a_row_without_a_column_of_the_first_is_refused_and_a_constraint_speaks_as_sqlalchemy(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    inserts = _call_path_inserts("sqlite", -1)
    visits = inserts[1][1]

    def inserting(rows: list[dict[str, Any]], statement: Inserted | None = None) -> Any:
        chosen = events._insert_visits("sqlite") if statement is None else statement
        return lambda conn: insert_rows(conn, chosen, rows)

    with pytest.raises(ValueError, match="'prompts'"):
        await store.run_with_connection(inserting([visits[0], {k: v for k, v in visits[1].items() if k != "prompts"}]))
    with pytest.raises(IntegrityError):  # no customer -1: the foreign key refuses the message
        await store.run_with_connection(inserting(inserts[3][1][:1], outbox._INSERT))


async def test_a_default_computed_per_row_is_left_to_sqlalchemys_execute(sqlite_store: Store) -> None:
    """`calls.variables` defaults to a new dict per row: rows that do not name it go the ordinary way."""
    row = {"protocol": PROTOCOL, "caller_id": None, "started_at": NOW}

    def insert_and_read(conn: Connection) -> Any:
        insert_rows(conn, insert(Call), [row, {**row, "protocol": "260310000002"}])
        return conn.execute(select(Call.protocol, Call.variables, Call.dialled).order_by(Call.protocol)).all()

    assert await sqlite_store.run_with_connection(insert_and_read) == [
        (PROTOCOL, {}, ""), ("260310000002", {}, ""),
    ]  # fmt: skip
