"""Migrations upgrade a store in service without losing a row, from the first revision on.

A store at the first revision gets realistic data: the demo accounts (`seed`), a call with its node
visits and call row, a ticket opened on that call, a lead and a reconciled fallback protocol, all
written by the product's own code (into a scratch store at head, then copied column by column into
the tables the first revision has). Then every later revision is applied one at a time, and after
each one every row of the first revision's tables must still be there, every column with the same
value; a migration that drops or rewrites data fails here. At head the new tables take rows and the
old data still answers the product's operations. Downgrades are walked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, MetaData, insert, select
from sqlalchemy.engine import Connection

from integrations.builtin.operations import build_registry
from integrations.messaging.outbox import NewMessage, Outbox, listed
from ivr.engine.operations import OperationContext, OperationStatus
from ivr.engine.ports import CallInfo, NodeVisit
from ivr.protocol_number import make_call_protocol
from ivr.store.calls import StoreCallRecorder
from ivr.store.db import Store
from ivr.store.events import StoreEventSink
from ivr.store.migrate import current_revision, pending_changes, upgrade
from ivr.store.models import Lead, OutboxChannel
from ivr.store.protocols import FallbackRange, StoreProtocolAllocator
from ivr.store.seed import KNOWN_CALLER, seed

from .conftest import NewDatabase
from .migrations import migrate, revisions

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
TIMEZONE = "America/Sao_Paulo"


@dataclass(frozen=True)
class Rows:
    """One table's columns and its rows (ordered by primary key), each a column -> value mapping."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]

    def only(self, columns: tuple[str, ...]) -> Rows:
        return Rows(columns, [{c: row[c] for c in columns} for row in self.rows])


Snapshot = dict[str, Rows]


def _tables(connection: Connection) -> MetaData:
    meta = MetaData()
    meta.reflect(connection)
    meta.remove(meta.tables["alembic_version"])
    return meta


def snapshot(connection: Connection) -> Snapshot:
    taken: Snapshot = {}
    for table in _tables(connection).sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        rows = [dict(row) for row in connection.execute(select(table).order_by(*order)).mappings()]
        taken[table.name] = Rows(tuple(c.name for c in table.columns), rows)
    return taken


def assert_kept(before: Snapshot, after: Snapshot, where: str) -> None:
    """Every table, column and row of `before` is in `after` with the same values (new ones allowed)."""
    for name, old in before.items():
        assert name in after, f"{where}: table {name} is gone ({len(old.rows)} rows)"
        missing = set(old.columns) - set(after[name].columns)
        assert not missing, f"{where}: columns {sorted(missing)} of {name} are gone"
        new = after[name].only(old.columns).rows
        assert len(new) == len(old.rows), f"{where}: {name} had {len(old.rows)} rows, now {len(new)}"
        changed = [(a, b) for a, b in zip(old.rows, new, strict=True) if a != b]
        assert not changed, f"{where}: {len(changed)} row(s) of {name} changed, first: {changed[0]}"


async def write_a_day(url: str, var_dir: Path) -> dict[str, str]:
    """At head, through the product's code: demo accounts, one call with node visits that opens a ticket,
    a lead, and a protocol issued from the fallback range then reconciled. Returns the call's numbers."""
    store = Store(url)
    events = StoreEventSink(store)
    fallback = FallbackRange(var_dir / "protocol_fallback.json", 9_000_000, 9_000_009)
    protocols = StoreProtocolAllocator(store, fallback, timeout_s=5, timezone=TIMEZONE, clock=lambda: NOW)
    try:
        await upgrade(store)
        await seed(store, now=NOW, timezone=TIMEZONE)
        await events.start()
        call = CallInfo(KNOWN_CALLER, dialled="30033336", unique_id="1773147600.7", linked_id="1773147600.7")
        protocol = await protocols.allocate(call)
        calls = StoreCallRecorder(events, clock=lambda: NOW)
        await calls.call_started(protocol, call, "sac", "v3")
        for node, verb, keyed, outcome in (
            ("welcome", "play", "", "done"),
            ("identify", "operate", "", "found"),
            ("main_menu", "menu", "1", "1"),
            ("open_failure_ticket", "operate", "", "found"),
        ):
            events.emit(NodeVisit(protocol, "sac", "v3", node, verb, keyed, outcome, NOW, 180))
        registry = build_registry(store, clock=lambda: NOW, timezone=TIMEZONE)
        who = await registry.call("customer_by_caller_id", {}, OperationContext(protocol, KNOWN_CALLER, None, False))
        known = OperationContext(protocol, KNOWN_CALLER, who.data["customer_id"], True)
        ticket = await registry.call("open_ticket", {"kind": "technical_failure", "circuit": "1"}, known)
        assert ticket.status is OperationStatus.FOUND, ticket
        await calls.call_ended(protocol, "queued:technical", {"ticket": ticket.data["number"], "at": NOW})
        await events.flushed()
        fallback.issue(2026, "1773147601.8", NOW)  # a number issued while the store was down...
        assert await protocols.reconcile() == 1  # ...and recorded once it answered again
        await store.write(lambda s: s.add(Lead(name="Padaria Boa Massa", phone="3132221100", created_at=NOW)))
        return {"protocol": protocol, "ticket": ticket.data["number"], "customer_id": str(who.data["customer_id"])}
    finally:
        await events.aclose()
        await protocols.aclose()
        await store.aclose()


async def copy_into(source: Store, target: Store) -> None:
    """The target's tables filled from the source's rows (the target's columns only), in key order. An
    integer key is left to the target to assign, so its id sequences move on as with rows written there."""
    rows = await source.run_with_connection(snapshot)

    def write(connection: Connection) -> None:
        for table in _tables(connection).sorted_tables:
            keys = list(table.primary_key.columns)
            generated = keys[0] if len(keys) == 1 and isinstance(keys[0].type, Integer) else None
            for row in rows[table.name].rows:
                values = {c.name: row[c.name] for c in table.columns if c is not generated}
                if generated is None:
                    connection.execute(insert(table).values(values))
                    continue
                got = connection.execute(insert(table).values(values).returning(generated)).scalar_one()
                assert got == row[generated.name], f"{table.name}: row {row[generated.name]} got id {got}"

    await target.run_with_connection(write)


async def test_every_migration_keeps_the_data_of_a_store_in_service(new_database: NewDatabase, tmp_path: Path) -> None:
    first, *later = revisions()
    scratch, store = Store(await new_database()), Store(await new_database(), busy_timeout_s=10)
    try:
        day = await write_a_day(scratch.url, tmp_path)
        await migrate(store, first)
        await copy_into(scratch, store)
        before = await store.run_with_connection(snapshot)
        assert all(before[t].rows for t in ("customers", "tickets", "calls", "node_visits", "sequences", "leads"))

        for revision in later:
            await migrate(store, revision)
            assert_kept(before, await store.run_with_connection(snapshot), f"upgrade to {revision}")
        assert await current_revision(store) == (later or [first])[-1]
        assert await pending_changes(store) == []
        await assert_usable_at_head(store, day, tmp_path)

        # Down to the first revision: its tables keep what they held at head (columns it has), and only
        # the later tables' rows go (they are dropped with their tables).
        at_head = await store.run_with_connection(snapshot)
        kept = {name: at_head[name].only(old.columns) for name, old in before.items()}
        for revision in reversed([first, *later][:-1]):
            await migrate(store, revision, down=True)
            assert_kept(kept, await store.run_with_connection(snapshot), f"downgrade to {revision}")
        await upgrade(store)
        again = await store.run_with_connection(snapshot)
        assert_kept(kept, again, "downgrade to the first revision, then upgrade to head")
        assert [t for t in again if t not in before and again[t].rows] == []
    finally:
        await scratch.aclose()
        await store.aclose()


async def assert_usable_at_head(store: Store, day: dict[str, str], var_dir: Path) -> None:
    """The old rows serve calls (accounts, tickets, the protocol sequence) and the new tables take rows."""
    assert await seed(store, now=NOW, timezone=TIMEZONE) == []  # the accounts are recognised, not re-added
    registry = build_registry(store, clock=lambda: NOW, timezone=TIMEZONE)
    ctx = OperationContext(day["protocol"], KNOWN_CALLER, int(day["customer_id"]), True)
    status = await registry.call("ticket_status", {"number": day["ticket"]}, ctx)
    assert status.status is OperationStatus.FOUND and status.data["circuit"] == "BHZ-FO-10021"
    later = StoreProtocolAllocator(
        store, FallbackRange(var_dir / "head_fallback.json", 9_000_000, 9_000_009), timeout_s=5, timezone=TIMEZONE,
        clock=lambda: NOW,
    )  # fmt: skip
    sequence = int(day["protocol"][4:11])
    assert await later.allocate(CallInfo(KNOWN_CALLER)) == make_call_protocol(2026, sequence + 1)
    await later.aclose()
    outbox = Outbox(store, clock=lambda: NOW)
    [queued] = await outbox.enqueue(
        NewMessage(OutboxChannel.EMAIL, "ti@serra-azul.example", "call_protocol", "Protocolo " + day["protocol"],
                   customer_id=int(day["customer_id"]), call_protocol=day["protocol"])
    )  # fmt: skip
    assert [m.id for m in await listed(store)] == [queued]
