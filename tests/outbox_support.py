"""What the e-mail and WhatsApp tests share: the demo accounts' moment, quick outbox retries, a seeded
store, and one call's view of the operations registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from ivr.config import OutboxSettings
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult, OperationStatus
from ivr.protocol_number import make_call_protocol
from ivr.store.db import Store
from ivr.store.seed import KNOWN_CALLER, seed

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo
WAIT_S = 10.0  # the longest any test waits for a message or a drainer
PROTOCOL = make_call_protocol(2026, 4242)

# Quick retries so an outage test takes a fraction of a second; the lease outlives any send.
FAST = OutboxSettings(
    poll_interval_s=0.5,
    retry_first_s=0.02,
    retry_max_s=0.1,
    max_attempts=1000,
    lease_s=30,
    send_timeout_s=10,
    shutdown_timeout_s=5,
)


@asynccontextmanager
async def seeded_store(url: str) -> AsyncIterator[Store]:
    """The migrated store at `url` with the demo accounts as of NOW, closed on exit."""
    db = Store(url, busy_timeout_s=10)
    await seed(db, now=NOW)
    try:
        yield db
    finally:
        await db.aclose()


class Caller:
    """One call's view of the registry, keeping who the caller is as the engine's CallContext does."""

    def __init__(self, registry: OperationRegistry, caller_id: str | None = KNOWN_CALLER) -> None:
        self.registry, self.caller_id = registry, caller_id
        self.customer_id: int | None = None
        self.confirmed = False

    async def op(self, name: str, /, **args: Any) -> OperationResult:
        ctx = OperationContext(PROTOCOL, self.caller_id, self.customer_id, self.confirmed)
        result = await self.registry.call(name, args, ctx)
        spec = self.registry.get(name)
        assert spec is not None
        if result.status is OperationStatus.FOUND:
            assert set(result.data) == set(spec.results), name
            if spec.identifies:
                self.customer_id = int(result.data["customer_id"])
                self.confirmed = self.confirmed or bool(result.data["confirmed"])
        return result

    async def confirmed_account(self) -> Caller:
        """Identified by caller ID, confirmed by the CNPJ root (Serra Azul, the known caller's account)."""
        await self.op("customer_by_caller_id")
        assert (await self.op("customer_by_cnpj", cnpj="11222333")).data["confirmed"] is True
        return self
