"""A desktop's receiver of screen pops (aiohttp on 127.0.0.1) that checks each request as a real one should:
the HMAC-SHA256 signature over "<timestamp>." + body with the shared secret, a timestamp within its
tolerance of its own clock (a replay carries an old one), each delivery shown once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from ivr.clock import Clock, ManualClock
from ivr.config import ScreenPopSettings
from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store
from tests.outbox_support import WAIT_S, seeded_store

SECRET = "test-screen-pop-secret-not-real"
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # a Monday, 11:00 in São Paulo
TOLERANCE_S = 300


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def pop(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``POST /pops``; `stop()` and `start()` again on the same port play an outage (connection refused)."""

    clock: Clock
    secret: str = SECRET
    port: int = 0
    shown: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused request was refused
    _deliveries: set[str] = field(default_factory=set)
    _arrived: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pops"

    def settings(self, **changes: Any) -> ScreenPopSettings:
        values: dict[str, Any] = dict(url=self.url, secret=SecretStr(SECRET), timeout_s=5, connect_timeout_s=2)
        return ScreenPopSettings(**(values | changes))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/pops", self._pop)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def next(self) -> Received:
        """The next pop shown (TimeoutError after WAIT_S)."""
        return await asyncio.wait_for(self._arrived.get(), WAIT_S)

    async def _pop(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Sac-Ivr-Timestamp", "")
        given = request.headers.get("X-Sac-Ivr-Signature", "")
        mac = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        expected = f"sha256={mac.hexdigest()}"
        if not hmac.compare_digest(given, expected):
            return self._refuse("bad signature")
        if not timestamp.isdigit() or abs(self.clock().timestamp() - int(timestamp)) > TOLERANCE_S:
            return self._refuse("stale timestamp")
        delivery = request.headers.get("X-Sac-Ivr-Delivery", "")
        if delivery not in self._deliveries:  # a retry of one already shown is acknowledged, not shown again
            self._deliveries.add(delivery)
            received = Received(dict(request.headers), body)
            self.shown.append(received)
            self._arrived.put_nowait(received)
        return web.json_response({"ok": True})

    def _refuse(self, why: str) -> web.Response:
        self.refused.append(why)
        return web.json_response({"error": why}, status=401)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def receiver(clock: ManualClock) -> AsyncIterator[Receiver]:
    desk = Receiver(clock)
    await desk.start()
    yield desk
    await desk.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with seeded_store(await new_sqlite_store(tmp_path / "ivr.sqlite3")) as db:
        yield db
