"""A call back through the real Asterisk 22: the dialer waits for a free agent, dials the customer first
through the carrier trunk (SIPp answering as the customer's phone), and only then do they reach the
team's queue, with the context an inbound call gives agents."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr import phone
from ivr.ami.client import AmiClient
from ivr.clock import ManualClock
from ivr.dialer import Dialer
from ivr.engine.ports import CallbackRequest
from ivr.store.callbacks import StoreCallbackBook
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import AttemptOutcome, Callback, CallbackState
from tests.callbacks.conftest import NOW

from .ami import Ami
from .conftest import BRIEF_AGENT_INTERFACE, E2EAsterisk, queue_member

pytestmark = pytest.mark.e2e

PROTOCOL = "202600000017"


async def test_a_call_back_reaches_the_agent_only_once_the_customer_answered(
    asterisk: E2EAsterisk, ami: Ami, tmp_path: Path
) -> None:
    settings = asterisk.settings
    conf = settings.callbacks.model_copy(update={"ring_s": 10.0, "lease_s": 60.0})
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}")
    await upgrade(store)
    book = StoreCallbackBook(store, clock=ManualClock(NOW), conf=conf, timezone=settings.timezone)
    callback_id = await book.schedule(
        CallbackRequest(
            protocol=PROTOCOL, ticket_number="800000014", number="31988776655", team="technical",
            customer_id=7, customer_name="Padaria", caller_id="3133334444", path="start>callback", tickets="800000013,800000014",
        )  # fmt: skip
    )
    client = AmiClient(settings.ami)
    await client.connect()
    dialer = Dialer(
        book,
        client,
        conf=conf,
        caller_id=phone.for_trunk(settings.page.sac_number, settings.sip.trunk_number_format),
        trunk_number_format=settings.sip.trunk_number_format,
        reply_timeout_s=settings.ami.action_timeout_s,
        unit="e2e",
    )
    try:
        assert await dialer.turn() == 0  # nobody logged in: nobody is dialled
        async with queue_member(ami, "technical", BRIEF_AGENT_INTERFACE):
            customer = asyncio.create_task(asterisk.answer_on_trunk(timeout_s=40))
            assert await dialer.turn() == 1
            connected = await ami.wait_event(
                lambda e: e.get("Event") == "AgentConnect" and f"IVR_PROTOCOL={PROTOCOL}" in e.get("ChanVariable", ""),
                timeout_s=35,
            )
            await dialer.settle()
            answered = await customer
        assert connected["Queue"] == "technical"
        assert "IVR_TICKETS=800000013,800000014" in connected["ChanVariable"]  # as an inbound call's
        heard = [
            e["AppData"] for e in ami.events if e.get("Event") == "Newexten" and e.get("Application") == "Playback"
            and e.get("Context") == "sac-callback"
        ]  # fmt: skip
        assert heard[0].endswith("/callback_intro") and heard[1:13] == [
            f"{settings.agi.sound_prefix}/digit/{digit}" for digit in PROTOCOL
        ]
        assert answered.received[0].startswith("INVITE sip:31988776655@"), answered.received
        row = await store.read(lambda s: s.get_one(Callback, callback_id))
        assert (row.state, row.attempts, row.last_outcome) == (CallbackState.ANSWERED, 1, "answered")
        assert [o for _, o, _ in await book.attempts(callback_id)] == [AttemptOutcome.ANSWERED]
    finally:
        await dialer.aclose()
        await client.close()
        await store.aclose()
