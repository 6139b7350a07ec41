"""A declared operation needs no other listing: what the checker reads (`declared_registry`) is exactly
what a running unit binds, with either back-end, and a new `@operation` method is both at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pytest

from integrations import catalog
from integrations.messaging.outbox import Outbox
from integrations.messaging.whatsapp_operations import WhatsAppOperations
from ivr.clock import ManualClock
from ivr.config import Settings, load_settings
from ivr.engine.operations import (
    OperationContext,
    OperationRegistry,
    OperationResult,
    OperationStatus,
    Requirement,
    operation,
)
from ivr.store.db import Store

CLOCK = ManualClock(datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
PROTOCOL = "202600000018"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}")  # binding reads nothing
    yield store
    await store.aclose()


async def bound(store: Store, settings: Settings) -> OperationRegistry:
    registry, _ = catalog.build_operations(store, outbox=Outbox(store, clock=CLOCK), settings=settings, clock=CLOCK)
    return registry


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(load_settings(), id="builtin"),
        # Never contacted: binding the carrier's operations opens no connection.
        pytest.param(
            load_settings(backend="http", carrier_api={"base_url": "http://127.0.0.1:9", "token": "t"}), id="http"
        ),
    ],
)
async def test_a_unit_binds_exactly_the_operations_the_checker_reads(store: Store, settings: Settings) -> None:
    registry = await bound(store, settings)
    try:
        assert [spec.name for spec in registry] == [spec.name for spec in catalog.declared_registry()]
    finally:
        await registry.aclose()


async def test_a_new_operation_is_one_method(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    @operation("Say hello on WhatsApp.", results=("greeting",), requires=Requirement.IDENTIFIED)
    async def whatsapp_hello(
        self: WhatsAppOperations, ctx: OperationContext, name: Annotated[str, "who to greet"]
    ) -> OperationResult:
        return OperationResult.found(greeting=f"olá, {name}")

    monkeypatch.setattr(WhatsAppOperations, "whatsapp_hello", whatsapp_hello, raising=False)

    declared = catalog.declared_registry().get("whatsapp_hello")
    assert declared is not None and [arg.name for arg in declared.args] == ["name"]
    registry = await bound(store, load_settings())
    try:
        stranger = OperationContext(PROTOCOL, None, None, False)
        refused = await registry.call("whatsapp_hello", {"name": "Ana"}, stranger)
        assert refused.status is OperationStatus.NOT_FOUND  # the declaration's requirement, before the method
        known = OperationContext(PROTOCOL, "3133334444", 1, False)
        answered = await registry.call("whatsapp_hello", {"name": "Ana"}, known)
        assert (answered.status, answered.data) == (OperationStatus.FOUND, {"greeting": "olá, Ana"})
    finally:
        await registry.aclose()
