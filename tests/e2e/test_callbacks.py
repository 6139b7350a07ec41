"""A call back through the real Asterisk 22: the dialer waits for a free agent, dials the customer first
through the carrier trunk (SIPp answering as the customer's phone), and only then do they reach the
team's queue, with the context an inbound call gives agents."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr import phone
from ivr.ami.client import AmiClient
from ivr.asterisk import sipp
from ivr.clock import ManualClock
from ivr.config import CallbackSettings
from ivr.dialer import Dialer
from ivr.engine.ports import CallbackRequest, QueueLoad
from ivr.store.callbacks import StoreCallbackBook
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import AttemptOutcome, Callback, CallbackState
from ivr.store.seed import KNOWN_CALLER
from tests.callbacks.conftest import NOW

from .ami import Ami
from .conftest import BRIEF_AGENT_INTERFACE, E2EAsterisk, queue_member, serve_ivr
from .ivr_process import IvrProcess
from .scripts import Journeys, answered_call
from .store import StoreReader

pytestmark = pytest.mark.e2e

PROTOCOL = "202600000017"
#: The customer's phone, busy: 486 to the INVITE.
BUSY_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sac-ivr busy customer">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
]]></send>
  <recv request="ACK"/>
</scenario>
"""


def _request(**changes: str) -> CallbackRequest:
    fields = dict(
        protocol=PROTOCOL, ticket_number="800000014", number="31988776655", team="technical",
        customer_id=7, customer_name="Padaria", caller_id="3133334444", path="start>callback",
        tickets="800000013,800000014",
    )  # fmt: skip
    return CallbackRequest(**{**fields, **changes})  # type: ignore[arg-type]


def _dialer(asterisk: E2EAsterisk, book: StoreCallbackBook, client: AmiClient) -> Dialer:
    settings = asterisk.settings
    return Dialer(
        book,
        client,
        conf=book_conf(asterisk),
        caller_id=phone.for_trunk(settings.page.sac_number, settings.sip.trunk_number_format),
        trunk_number_format=settings.sip.trunk_number_format,
        reply_timeout_s=settings.ami.action_timeout_s,
        unit="e2e",
    )


def book_conf(asterisk: E2EAsterisk) -> CallbackSettings:
    return asterisk.settings.callbacks.model_copy(update={"ring_s": 10.0, "lease_s": 60.0, "max_attempts": 2})


async def test_a_call_back_reaches_the_agent_only_once_the_customer_answered(
    asterisk: E2EAsterisk, ami: Ami, tmp_path: Path
) -> None:
    settings = asterisk.settings
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}")
    await upgrade(store)
    book = StoreCallbackBook(store, clock=ManualClock(NOW), conf=book_conf(asterisk), timezone=settings.timezone)
    callback_id = await book.schedule(_request())
    client = AmiClient(settings.ami)
    await client.connect()
    dialer = _dialer(asterisk, book, client)
    try:
        assert await dialer.turn() == 0  # nobody logged in: nobody is dialled
        async with queue_member(ami, "technical", "PJSIP/agent-ana"):  # Ana's SIP phone
            customer = asyncio.create_task(asterisk.answer_on_trunk(timeout_s=60))
            agent = asyncio.create_task(asterisk.answer_as_agent("ana", timeout_s=60))
            assert await dialer.turn() == 1
            connected = await ami.wait_event(
                lambda e: e.get("Event") == "AgentConnect" and f"IVR_PROTOCOL={PROTOCOL}" in e.get("ChanVariable", ""),
                timeout_s=35,
            )
            # Customer and agent talk: both channels enter one bridge.
            bridged = await ami.wait_event(
                lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel") == connected["DestChannel"], 10
            )
            customer_side = await ami.wait_event(
                lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel") == connected["Channel"]
                and e.get("BridgeUniqueid") == bridged["BridgeUniqueid"], 10,
            )  # fmt: skip
            await dialer.settle()
            await ami.action("Hangup", Channel=connected["Channel"])  # the conversation ends
            answered, phone = await customer, await agent
        assert connected["Queue"] == "technical"
        assert customer_side["Channel"].startswith("PJSIP/carrier-")
        assert bridged["Channel"].startswith("PJSIP/agent-ana-")
        assert phone.received[0].startswith("INVITE sip:ana@127.0.0.3"), phone.received
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


async def test_a_busy_customer_is_called_again_after_the_spacing_then_given_up_and_kept(
    asterisk: E2EAsterisk, ami: Ami, tmp_path: Path
) -> None:
    sip = asterisk.settings.sip
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}")
    await upgrade(store)
    clock = ManualClock(NOW)
    conf = book_conf(asterisk)
    book = StoreCallbackBook(store, clock=clock, conf=conf, timezone=asterisk.settings.timezone)
    callback_id = await book.schedule(_request(protocol="202600000019"))
    client = AmiClient(asterisk.settings.ami)
    await client.connect()
    dialer = _dialer(asterisk, book, client)
    try:
        async with queue_member(ami, "technical", BRIEF_AGENT_INTERFACE):
            for _ in range(conf.max_attempts):
                customer = asyncio.create_task(sipp._run_sipp(BUSY_SCENARIO, [], sip.sbc_address, sip.sbc_port, 15))
                assert await dialer.turn() == 1
                await dialer.settle()
                busy = await customer
                assert busy.ok and busy.received[0].startswith("INVITE sip:31988776655@"), busy.summary()
                assert await dialer.turn() == 0  # spaced (or given up)
                clock.set(clock() + timedelta(seconds=conf.spacing_s))
        row = await store.read(lambda s: s.get_one(Callback, callback_id))
        assert (row.state, row.attempts, row.last_outcome) == (CallbackState.GIVEN_UP, 2, "busy")
        assert [o for _, o, _ in await book.attempts(callback_id)] == [AttemptOutcome.BUSY] * 2
        assert not any(
            e.get("Event") == "AgentCalled" and "202600000019" in e.get("ChanVariable", "") for e in ami.events
        )
    finally:
        await dialer.aclose()
        await client.close()
        await store.aclose()


@pytest.fixture
def serving(asterisk: E2EAsterisk) -> Iterator[IvrProcess]:
    """`ivr serve` looking for due call backs twice a second."""
    with serve_ivr(asterisk, env={"IVR_CALLBACKS__POLL_INTERVAL_S": "0.5"}) as process:
        yield process


async def test_ivr_serve_places_a_call_back_left_pending_across_a_restart(
    asterisk: E2EAsterisk, ami: Ami, serving: IvrProcess
) -> None:
    store = Store(serving.database_url)
    book = StoreCallbackBook(store, clock=ManualClock(serving.moment), conf=book_conf(asterisk), timezone="UTC")
    try:
        callback_id = await book.schedule(_request(protocol="202600000023"))
    finally:
        await store.aclose()
    assert await asyncio.to_thread(serving.stop) == 0  # pending, nobody logged in: nothing dialled
    await asyncio.to_thread(serving.start)
    async with queue_member(ami, "technical", BRIEF_AGENT_INTERFACE):
        customer = asyncio.create_task(asterisk.answer_on_trunk(timeout_s=40))
        await ami.wait_event(
            lambda e: e.get("Event") == "AgentConnect" and "IVR_PROTOCOL=202600000023" in e.get("ChanVariable", ""),
            timeout_s=35,
        )
        assert (await customer).received[0].startswith("INVITE sip:31988776655@")
    store = Store(serving.database_url)
    try:
        row = await store.read(lambda s: s.get_one(Callback, callback_id))
    finally:
        await store.aclose()
    assert (row.state, row.attempts, row.last_outcome) == (CallbackState.ANSWERED, 1, "answered")


async def test_a_caller_nobody_can_take_asks_for_a_call_back_and_an_agent_returns_it(
    asterisk: E2EAsterisk, ami: Ami, serving: IvrProcess
) -> None:
    """The whole promise: nobody logged in, the caller takes the call back to the number calling; once an
    agent logs in, `ivr serve` dials the customer, who hears the protocol of their call and meets the agent."""
    stored = StoreReader(serving.database)
    before = stored.protocols()
    nobody = {"technical": QueueLoad(waiting=0, agents=0)}
    script = await Journeys(serving).script(KNOWN_CALLER, "0", "1", "1", queues=nobody)
    result = await answered_call(asterisk, script, timeout_s=script.steps_s + 30)
    assert result.hung_up_by == "asterisk", result.summary()  # the IVR said goodbye
    (call,) = await stored.ended_calls(before, 1)
    assert "callback_request" in call.path, call.path
    async with queue_member(ami, "technical", "PJSIP/agent-ana"):
        customer = asyncio.create_task(asterisk.answer_on_trunk(timeout_s=60))
        agent = asyncio.create_task(asterisk.answer_as_agent("ana", timeout_s=60))
        connected = await ami.wait_event(
            lambda e: e.get("Event") == "AgentConnect" and f"IVR_PROTOCOL={call.protocol}" in e.get("ChanVariable", ""),
            timeout_s=40,
        )
        for channel in (connected["Channel"], connected["DestChannel"]):  # customer and agent talk
            await ami.wait_event(
                lambda e: e.get("Event") == "BridgeEnter" and e.get("Channel") == channel,  # noqa: B023 (awaited here)
                10,
            )
        await ami.action("Hangup", Channel=connected["Channel"])
        dialled, _ = await customer, await agent
    assert dialled.received[0].startswith(f"INVITE sip:{KNOWN_CALLER}@"), dialled.received
    store = Store(serving.database_url)
    try:
        (row,) = await store.read(
            lambda s: list(s.scalars(select(Callback).where(Callback.call_protocol == call.protocol)))
        )
    finally:
        await store.aclose()
    assert (row.state, row.attempts, row.last_outcome) == (CallbackState.ANSWERED, 1, "answered")
