"""Whole calls while a messaging peer is down (the SMTP server, the WhatsApp Cloud API): the call goes on
as usual and the caller hears the protocol was sent (it waits in the outbox); the messages are delivered
once the peer is back, without anyone re-sending them; none is lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.app import build_services
from ivr.clock import system_clock
from ivr.config import load_settings
from ivr.engine.context import Outcome
from ivr.engine.flow import Flow
from ivr.store.db import Store
from ivr.store.models import OutboxChannel, OutboxMessage, OutboxState
from ivr.store.seed import KNOWN_CALLER
from ivr.voice.catalogue import Catalogue
from tests.email.conftest import email_conf
from tests.outbox_support import FAST
from tests.whatsapp.conftest import CloudApi

from .conftest import SmtpServer, call, seeded_sqlite, words

HEARD = "Ele também vai para o e-mail e o WhatsApp cadastrados na sua conta"


@dataclass
class Peer:
    """A messaging peer as the test drives it: down, up again, and what it delivered."""

    channel: OutboxChannel
    settings: dict[str, Any]  # load_settings overrides pointing at the peer
    start: Callable[[], Awaitable[None]]
    delivered: Callable[[int], Awaitable[list[str]]]  # the next n deliveries, each as text holding the protocol


async def smtp_peer(server: SmtpServer) -> Peer:
    await server.stop()  # down; start() listens on the same port again

    async def delivered(n: int) -> list[str]:
        return [f"{r.message['X-SAC-Protocolo']} {r.message.get_content()}" for r in await server.messages(n)]

    return Peer(OutboxChannel.EMAIL, {"email": email_conf(server)}, server.start, delivered)


async def whatsapp_peer(cloud: CloudApi) -> Peer:
    await cloud.start()
    await cloud.stop()

    async def delivered(n: int) -> list[str]:
        return [" ".join((await cloud.next()).parameters) for _ in range(n)]

    return Peer(OutboxChannel.WHATSAPP, {"whatsapp": cloud.settings()}, cloud.start, delivered)


@pytest.mark.parametrize("which", ["smtp", "whatsapp"])
async def test_peer_down_leaves_the_call_alone_and_messages_go_after_recovery(
    which: str, tmp_path: Path, smtp: SmtpServer, sac_flows: Mapping[str, Flow], catalogue: Catalogue
) -> None:
    cloud = CloudApi()
    peer = await (smtp_peer(smtp) if which == "smtp" else whatsapp_peer(cloud))
    # The drainer retries as time passes: the system clock, as `ivr serve` runs it.
    url = await seeded_sqlite(tmp_path, now=system_clock())
    settings = load_settings(database_url=url, var_dir=tmp_path, outbox=FAST, **peer.settings)
    try:
        async with build_services(settings, clock=system_clock) as services:
            result, line = await call(sac_flows, services, settings, ["0"], caller=KNOWN_CALLER)
            assert (result.outcome, result.target) == (Outcome.QUEUE, "technical")
            assert HEARD in words(catalogue, line)
            waiting = await outbox_rows(settings.database_url, peer.channel)
            assert waiting and all(state is not OutboxState.SENT for state, _ in waiting)

            await peer.start()
            texts = await peer.delivered(len(waiting))
    finally:
        await cloud.stop()
    assert all(result.protocol in text for text in texts)
    rows = await outbox_rows(settings.database_url, peer.channel)
    assert [state for state, _ in rows] == [OutboxState.SENT] * len(waiting)  # nothing lost


async def outbox_rows(url: str, channel: OutboxChannel) -> list[tuple[OutboxState, str]]:
    """(state, recipient) of the channel's messages."""
    store = Store(url)
    try:
        query = select(OutboxMessage.state, OutboxMessage.recipient).where(OutboxMessage.channel == channel)
        return [(state, recipient) for state, recipient in await store.read(lambda s: s.execute(query).all())]
    finally:
        await store.aclose()
