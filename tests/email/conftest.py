"""A real SMTP server (aiosmtpd) on 127.0.0.1 in the test's own event loop, recording what arrives, and
stores (SQLite and PostgreSQL) with the demo accounts."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from ivr.config import EmailSettings
from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store
from tests.outbox_support import WAIT_S, seeded_store


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


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A relay's TLS context with a fresh self-signed certificate for 127.0.0.1, and the certificate's
    file (the CA file a client trusts)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


def email_conf(server: SmtpServer) -> EmailSettings:
    return EmailSettings(host="127.0.0.1", port=server.port, security="none", timeout_s=5)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = await new_sqlite_store(tmp_path / "ivr.sqlite3")
    else:
        url = await request.getfixturevalue("postgres").migrated_database()
    async with seeded_store(url) as db:
        yield db
