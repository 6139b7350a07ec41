"""A real SMTP server (aiosmtpd) on 127.0.0.1 in the test's own event loop, recording what arrives, and
stores (SQLite and PostgreSQL) with the demo accounts."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from integrations.outbox import Outbox
from ivr.config import EmailSettings, OutboxSettings
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.seed import seed

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo
WAIT_S = 10.0  # the longest any test waits for a message or a drainer


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes  # as it came over the wire


class SmtpServer:
    """aiosmtpd on 127.0.0.1; `stop()` and `start()` again on the same port play an outage."""

    def __init__(self, **options: Any) -> None:
        self.options = options  # aiosmtpd.smtp.SMTP's: TLS, AUTH...
        self.port = 0
        self.refuse: set[str] = set()  # recipients answered with 550
        self.received: list[Received] = []
        self._arrived: asyncio.Queue[Received] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="mx.test", loop=loop, **self.options), "127.0.0.1", self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def next(self) -> Received:
        """The next message to arrive (TimeoutError after WAIT_S)."""
        return await asyncio.wait_for(self._arrived.get(), WAIT_S)

    async def messages(self, count: int) -> list[Received]:
        return [await self.next() for _ in range(count)]

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), message, envelope.original_content)
        self.received.append(received)
        self._arrived.put_nowait(received)
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


def email_conf(server: SmtpServer) -> EmailSettings:
    return EmailSettings(host="127.0.0.1", port=server.port, security="none", timeout_s=5)


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


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    else:
        url = await request.getfixturevalue("postgres").fresh_database()
    db = Store(url, busy_timeout_s=10)
    await upgrade(db)
    await seed(db, now=NOW)
    yield db
    await db.aclose()


@pytest.fixture
async def outboxes() -> AsyncIterator[list[Outbox]]:
    """Outboxes a test starts; each is closed at the end, whatever happened."""
    started: list[Outbox] = []
    yield started
    for outbox in started:
        await outbox.aclose()
