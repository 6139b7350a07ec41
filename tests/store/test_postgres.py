"""What only PostgreSQL shows: several engines (processes) sharing one database. The rest of the store
tests run on both SQLite and PostgreSQL through the parametrised `store` fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from integrations.builtin.operations import build_registry
from ivr.engine.operations import OperationContext, OperationStatus
from ivr.engine.ports import CallInfo
from ivr.protocol_number import NumberKind, kind_of, make_call_protocol
from ivr.store.db import Store
from ivr.store.migrate import pending_changes
from ivr.store.protocols import FallbackRange, StoreProtocolAllocator
from ivr.store.seed import KNOWN_CALLER, seed
from tests.postgres import PostgresServer

from .conftest import NOW


@pytest.fixture
async def pg(postgres: PostgresServer) -> AsyncIterator[Store]:
    store = Store(await postgres.migrated_database())
    yield store
    await store.aclose()


async def test_postgres_schema_matches_and_seed_is_idempotent(pg: Store) -> None:
    assert await pending_changes(pg) == []
    assert len(await seed(pg, now=NOW)) == 4 and await seed(pg, now=NOW) == []


async def test_postgres_protocols_are_unique_across_two_engines(pg: Store, tmp_path: Path) -> None:
    other = Store(pg.url)
    allocators = [
        StoreProtocolAllocator(
            db, FallbackRange(tmp_path / "fb.json", 9_000_000, 9_000_009), timeout_s=5, clock=lambda: NOW
        )
        for db in (pg, other)
    ]
    try:
        numbers = await asyncio.gather(*(a.allocate(CallInfo(None)) for _ in range(20) for a in allocators))
    finally:
        await other.aclose()
    assert len(set(numbers)) == 40 and all(kind_of(n) is NumberKind.CALL_PROTOCOL for n in numbers)
    assert max(int(n[4:11]) for n in numbers) == 40


async def test_postgres_operations(pg: Store) -> None:
    await seed(pg, now=NOW)
    registry = build_registry(pg, clock=lambda: NOW, timezone="America/Sao_Paulo")
    ctx = OperationContext(make_call_protocol(2026, 1), KNOWN_CALLER, None, False)
    who = await registry.call("customer_by_caller_id", {}, ctx)
    ctx = OperationContext(ctx.call_protocol, KNOWN_CALLER, who.data["customer_id"], False)
    opened = await registry.call("open_ticket", {"kind": "technical_failure", "circuit": "1"}, ctx)
    status = await registry.call("ticket_status", {"number": opened.data["number"]}, ctx)
    assert status.status is OperationStatus.FOUND and status.data["circuit"] == "BHZ-FO-10021"
