"""`backend: http` in the settings sends the account operations to the carrier's systems."""

from __future__ import annotations

from pathlib import Path

from integrations.catalog import build_registry
from integrations.outbox import Outbox
from integrations.registry import OperationContext, OperationStatus
from ivr.config import load_settings
from ivr.store.db import Store
from ivr.voice.catalogue import Catalogue

from .carrier_fake import KNOWN_CALLER, PROTOCOL, TOKEN, CarrierFake


async def test_the_catalogue_sends_account_operations_to_the_carrier_api(tmp_path: Path, carrier: CarrierFake) -> None:
    settings = load_settings(backend="http", carrier_api={"base_url": carrier.base_url, "token": TOKEN})
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}")  # never touched by these operations
    registry = build_registry(store, outbox=Outbox(store), settings=settings)
    try:
        ctx = OperationContext(PROTOCOL, KNOWN_CALLER, None, False)
        found = await registry.call("customer_by_caller_id", {}, ctx)
        assert found.status is OperationStatus.FOUND and found.data["customer_name"] == "Padaria Pão Quente Ltda"
        assert carrier.hits["GET /customers"] == 1
        known = OperationContext(PROTOCOL, KNOWN_CALLER, 1, False)
        other = await registry.call("latest_ticket", {"kind": "bgp_request"}, known)
        assert other.status is OperationStatus.ERROR and "not offered by the carrier API" in other.message
    finally:
        await registry.aclose()
        await store.aclose()


def test_the_hold_prompt_is_in_the_catalogue() -> None:
    settings = load_settings()
    assert Catalogue.load(settings.prompts_dir).has(settings.hold.prompt)
