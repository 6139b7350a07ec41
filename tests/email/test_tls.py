"""STARTTLS and AUTH as a production relay asks for them: the certificate checked against a private CA
file, the password from the settings; a wrong password keeps the message waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from sqlalchemy import select

from integrations.messaging.email import SmtpSender
from integrations.messaging.outbox import NewMessage, Outbox
from ivr.clock import system_clock
from ivr.config import EmailSettings
from ivr.store.db import Store
from ivr.store.models import OutboxChannel, OutboxMessage, OutboxState
from tests.outbox_support import FAST, WAIT_S

from .conftest import SmtpServer, self_signed_tls

USER, PASSWORD = "sac-ivr", "s3nha-do-relay"
pytestmark = pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # TLS is no concern of the database


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[tuple[SmtpServer, Path]]:
    """A relay that requires STARTTLS then AUTH, with a self-signed certificate for 127.0.0.1."""
    context, cert = self_signed_tls(tmp_path)
    server = SmtpServer(tls_context=context, require_starttls=True, auth_required=True, authenticator=_authenticate)
    await server.start()
    yield server, cert
    await server.stop()


def conf(server: SmtpServer, ca_file: Path, password: str) -> EmailSettings:
    return EmailSettings(
        host="127.0.0.1",
        port=server.port,
        security="starttls",
        username=USER,
        password=SecretStr(password),
        ca_file=ca_file,
        timeout_s=5,
    )


async def test_mail_goes_through_starttls_and_auth(
    store: Store, relay: tuple[SmtpServer, Path], outboxes: list[Outbox]
) -> None:
    server, ca_file = relay
    box = Outbox(
        store, {OutboxChannel.EMAIL: SmtpSender(conf(server, ca_file, PASSWORD))}, clock=system_clock, conf=FAST
    )
    outboxes.append(box)
    await box.start()
    await box.enqueue(NewMessage(OutboxChannel.EMAIL, "ti@hvaco.org.br", "test", "Olá", subject="Teste"))
    received = await server.next()
    assert received.rcpt_tos == ("ti@hvaco.org.br",) and received.message["Subject"] == "Teste"


async def test_a_wrong_password_keeps_the_message_waiting(
    store: Store, relay: tuple[SmtpServer, Path], outboxes: list[Outbox]
) -> None:
    server, ca_file = relay
    box = Outbox(
        store, {OutboxChannel.EMAIL: SmtpSender(conf(server, ca_file, "errada"))}, clock=system_clock, conf=FAST
    )
    outboxes.append(box)
    await box.start()
    await box.enqueue(NewMessage(OutboxChannel.EMAIL, "ti@hvaco.org.br", "test", "Olá", subject="Teste"))
    await box.wait_until(lambda s: s.retrying >= 1, WAIT_S)
    row = await store.read(lambda s: s.scalars(select(OutboxMessage)).one())
    assert row.state is OutboxState.PENDING and "535" in row.last_error
    assert "errada" not in row.last_error and server.received == []
