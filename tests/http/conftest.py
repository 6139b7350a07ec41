"""The carrier API stand-in on a free loopback port, and the HTTP adapter pointed at it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from integrations.carrier.backend import HttpOperations
from integrations.carrier.client import CarrierClient
from ivr.config import CarrierApiSettings
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult

from .carrier_fake import NOW, PROTOCOL, TOKEN, CarrierFake

#: Short bounds so faults show quickly; the breaker opens after one read's three attempts.
TIMINGS: dict[str, Any] = {
    "token": TOKEN,
    "read_deadline_s": 1.5,
    "write_deadline_s": 1.5,
    "attempt_timeout_s": 0.4,
    "connect_timeout_s": 0.4,
    "read_retries": 2,
    "backoff_first_s": 0.01,
    "backoff_max_s": 0.02,
    "breaker_failures": 3,
    "breaker_reset_s": 30.0,
    "cache_ttl_s": 60.0,
}


class Clock:
    """The monotonic clock the breaker and the cache read; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def carrier() -> AsyncIterator[CarrierFake]:
    fake = CarrierFake()
    runner = web.AppRunner(fake.app(), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        fake.released.set()
        await runner.cleanup()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def adapter(carrier: CarrierFake, clock: Clock, **overrides: Any) -> HttpOperations:
    conf = CarrierApiSettings(base_url=carrier.base_url, **{**TIMINGS, **overrides})
    client = CarrierClient(conf, monotonic=clock)
    return HttpOperations(conf, timezone="America/Sao_Paulo", clock=lambda: NOW, client=client)


@pytest.fixture
async def http_ops(carrier: CarrierFake, clock: Clock) -> AsyncIterator[HttpOperations]:
    async with adapter(carrier, clock) as operations:
        yield operations


@pytest.fixture
def registry(http_ops: HttpOperations) -> OperationRegistry:
    return http_ops.registry()


class Caller:
    """One call's view of the operations: keeps who the caller is, as the engine does."""

    def __init__(self, registry: OperationRegistry, caller_id: str | None, protocol: str = PROTOCOL) -> None:
        self.registry = registry
        self.ctx = OperationContext(protocol, caller_id, None, False)

    async def op(self, name: str, /, **args: Any) -> OperationResult:
        result = await self.registry.call(name, args, self.ctx)
        spec = self.registry.get(name)
        if spec is not None and spec.identifies and result.data.get("customer_id") is not None:
            same = result.data["customer_id"] == self.ctx.customer_id
            confirmed = (self.ctx.account_confirmed and same) or bool(result.data["confirmed"])
            who = result.data["customer_id"]
            self.ctx = OperationContext(self.ctx.call_protocol, self.ctx.caller_id, who, confirmed)
        return result


@pytest.fixture
def unused_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
