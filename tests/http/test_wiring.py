"""`backend: http` in the settings sends the account operations to the carrier's systems."""

from __future__ import annotations

from pathlib import Path

from integrations.catalog import build_registry
from integrations.messaging.outbox import Outbox
from ivr.app import demo_services
from ivr.clock import ManualClock
from ivr.config import load_settings
from ivr.engine.operations import OperationContext, OperationStatus
from ivr.store import seed
from ivr.store.db import Store
from ivr.voice.catalogue import Catalogue

from .carrier_fake import KNOWN_CALLER, NOW, PROTOCOL, TOKEN, CarrierFake

CLOCK = ManualClock(NOW)


async def test_the_catalogue_sends_account_operations_to_the_carrier_api(tmp_path: Path, carrier: CarrierFake) -> None:
    settings = load_settings(backend="http", carrier_api={"base_url": carrier.base_url, "token": TOKEN})
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}")  # never touched by these operations
    registry = build_registry(store, outbox=Outbox(store, clock=CLOCK), settings=settings, clock=CLOCK)
    try:
        ctx = OperationContext(PROTOCOL, KNOWN_CALLER, None, False)
        found = await registry.call("customer_by_caller_id", {}, ctx)
        assert found.status is OperationStatus.FOUND and found.data["customer_name"] == "Padaria Pão Quente Ltda"
        assert carrier.hits["GET /customers"] == 1
        known = OperationContext(PROTOCOL, KNOWN_CALLER, 1, False)
        latest = await registry.call("latest_ticket", {"kind": "technical_failure"}, known)  # a journey's
        assert latest.status is OperationStatus.FOUND and carrier.hits["GET /tickets"] == 1
    finally:
        await registry.aclose()
        await store.aclose()


def test_the_hold_prompt_is_in_the_catalogue() -> None:
    settings = load_settings()
    assert Catalogue.load(settings.prompts_dir).has(settings.hold.prompt)


async def test_flow_tests_answer_from_the_seeded_store_even_with_the_http_backend(
    tmp_path: Path, carrier: CarrierFake
) -> None:
    settings = load_settings(backend="http", carrier_api={"base_url": carrier.base_url, "token": TOKEN})
    async with demo_services(settings, tmp_path, clock=CLOCK) as services:
        ctx = OperationContext(PROTOCOL, seed.KNOWN_CALLER, None, False)
        found = await services.operations.call("customer_by_caller_id", {}, ctx)
    assert found.status is OperationStatus.FOUND
    assert sum(carrier.hits.values()) == 0
