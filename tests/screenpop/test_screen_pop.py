"""The screen pop: the call's context from a recorded AMI AgentConnect, signed, through the durable outbox to
a local receiver that checks the signature and refuses replays; retried while the receiver is down; off
without a URL."""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from integrations.messaging.outbox import Outbox
from integrations.messaging.screen_pop import ScreenPops, ScreenPopSender, pop_from_event
from ivr.ami.client import AmiClient
from ivr.app import _screen_pops, _senders
from ivr.clock import ManualClock
from ivr.config import ConfigError, load_settings
from ivr.protocol_number import make_call_protocol
from ivr.store.db import Store
from ivr.store.models import OutboxChannel, OutboxMessage, OutboxState
from tests.ami.conftest import settings_for
from tests.ami.fake_ami import FakeAmi
from tests.outbox_support import FAST, WAIT_S

from .conftest import NOW, SECRET, TOLERANCE_S, Receiver

PROTOCOL = make_call_protocol(2026, 17)
CALLER = "3133334444"
CUSTOMER = "Transportes Serra Azul Ltda"
#: As Asterisk 22 reports an agent answering a caller the IVR queued (manager.conf channelvars): the
#: caller's variables in ChanVariable, the agent channel's (unset) in DestChanVariable.
RECORDED = {
    "Event": "AgentConnect", "Privilege": "agent,all",
    "Channel": "PJSIP/carrier-00000007", "ChannelState": "6", "ChannelStateDesc": "Up",
    "CallerIDNum": CALLER, "CallerIDName": "<unknown>", "Language": "pt_BR", "Context": "sac",
    "Exten": "30033336", "Priority": "7", "Uniqueid": "1765116000.17", "Linkedid": "1765116000.17",
    "DestChannel": "PJSIP/agent-101-00000008", "DestCallerIDNum": "101", "DestUniqueid": "1765116010.18",
    "DestLinkedid": "1765116000.17", "Queue": "billing", "Interface": "PJSIP/agent-101", "MemberName": "Ana",
    "HoldTime": "12", "RingTime": "3",
    "ChanVariable": [
        f"IVR_PROTOCOL={PROTOCOL}", f"IVR_CALLER_ID={CALLER}", "IVR_CUSTOMER=1", f"IVR_CUSTOMER_NAME={CUSTOMER}",
        "IVR_PATH=main_menu>identify/check_cnpj_root>billing_menu>billing_queue",
        "IVR_TICKETS=800000013,800000014", "IVR_CIRCUIT=BHE/IP/00123", "IVR_KEYED=",
    ],
    "DestChanVariable": ["IVR_PROTOCOL=", "IVR_CALLER_ID=", "IVR_CUSTOMER=", "IVR_CUSTOMER_NAME=", "IVR_PATH="],
}  # fmt: skip


def drainer(store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox], **changes: object) -> Outbox:
    sender = ScreenPopSender(receiver.settings(**changes), clock=clock)
    box = Outbox(store, {OutboxChannel.SCREEN_POP: sender}, clock=clock, conf=FAST)
    outboxes.append(box)
    return box


async def pop_queued(box: Outbox, clock: ManualClock, event: dict[str, object] = RECORDED) -> None:
    pops = ScreenPops(box, clock=clock)
    pops.on_agent_connect(event)
    await pops.aclose()  # the row is written


async def rows(store: Store) -> list[OutboxMessage]:
    return await store.read(lambda s: list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))))


def test_the_pop_carries_the_calls_context_from_the_agent_connect_event() -> None:
    pop = pop_from_event(RECORDED, answered_at=NOW.isoformat())
    assert pop == {
        "event": "agent_connect",
        "protocol": PROTOCOL,
        "queue": "billing",
        "agent": {"interface": "PJSIP/agent-101", "name": "Ana"},
        "linkedid": "1765116000.17",
        "answered_at": "2026-12-07T14:00:00+00:00",
        "hold_s": 12,
        "caller_id": CALLER,
        "customer": {"id": 1, "name": CUSTOMER},
        "circuit": "BHE/IP/00123",
        "keyed": None,  # set but empty: the flow gave nothing
        "path": ["main_menu", "identify/check_cnpj_root", "billing_menu", "billing_queue"],
        "tickets": ["800000013", "800000014"],
    }


def test_an_unidentified_caller_with_a_withheld_number_gets_empty_fields_and_a_call_not_from_the_ivr_none() -> None:
    # One ChanVariable line comes as a string; a test client may join several with newlines.
    lone = pop_from_event(RECORDED | {"ChanVariable": f"IVR_PROTOCOL={PROTOCOL}"}, answered_at="t")
    assert lone is not None
    assert (lone["caller_id"], lone["customer"]) == (None, {"id": None, "name": ""})
    assert (lone["path"], lone["tickets"], lone["circuit"]) == ([], [], None)
    joined = pop_from_event(RECORDED | {"ChanVariable": f"IVR_PROTOCOL={PROTOCOL}\nIVR_TICKETS=8"}, answered_at="t")
    assert joined is not None and joined["tickets"] == ["8"]
    assert pop_from_event(RECORDED | {"ChanVariable": ["IVR_PROTOCOL="]}, answered_at="t") is None
    assert pop_from_event({"Event": "AgentConnect", "Queue": "billing"}, answered_at="t") is None


async def test_a_pop_reaches_the_receiver_signed_and_the_logs_keep_the_customer_out(
    store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    box = drainer(store, receiver, clock, outboxes)
    with caplog.at_level(logging.DEBUG):
        await box.start()
        await pop_queued(box, clock)
        got = await receiver.next()  # its signature and timestamp checked
        await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    [row] = await rows(store)
    assert got.pop == pop_from_event(RECORDED, answered_at=NOW.isoformat())
    assert got.headers["X-Sac-Ivr-Timestamp"] == str(int(NOW.timestamp()))
    assert got.headers["X-Sac-Ivr-Delivery"] == str(row.id)
    assert (row.state, row.recipient, row.call_protocol) == (OutboxState.SENT, "PJSIP/agent-101", PROTOCOL)
    assert PROTOCOL in caplog.text and "PJSIP/agent-101" in caplog.text
    for personal in (CALLER, CUSTOMER, "BHE/IP/00123", "800000013"):
        assert personal not in caplog.text


async def test_a_wrong_secret_is_refused_and_given_up(
    store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox]
) -> None:
    receiver.secret = "another-secret-of-the-desktop"
    box = drainer(store, receiver, clock, outboxes)
    await box.start()
    await pop_queued(box, clock)
    await box.wait_until(lambda s: s.failed == 1, WAIT_S)
    [row] = await rows(store)
    assert (row.state, row.attempts, row.last_error) == (OutboxState.FAILED, 1, f"screen pop {receiver.url}: HTTP 401")
    assert receiver.refused == ["bad signature"] and receiver.shown == []


async def test_a_replayed_or_altered_pop_is_refused(
    store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox]
) -> None:
    box = drainer(store, receiver, clock, outboxes)
    await box.start()
    await pop_queued(box, clock)
    got = await receiver.next()
    signed = {name: value for name, value in got.headers.items() if name.startswith("X-Sac-Ivr-")}
    async with aiohttp.ClientSession() as session:
        altered = got.body.replace(b'"billing"', b'"commercial"')
        async with session.post(receiver.url, data=altered, headers=signed) as response:
            assert response.status == 401
        clock.set(NOW + timedelta(seconds=TOLERANCE_S + 1))  # the same request, captured and sent again later
        async with session.post(receiver.url, data=got.body, headers=signed) as response:
            assert response.status == 401
    assert receiver.refused == ["bad signature", "stale timestamp"] and len(receiver.shown) == 1


async def test_a_pop_waits_while_the_receiver_is_down_and_goes_when_it_is_back(
    store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox]
) -> None:
    await receiver.stop()  # its port stays reserved in `receiver.port`: connection refused
    box = drainer(store, receiver, clock, outboxes)
    await box.start()
    await pop_queued(box, clock)
    await box.wait_until(lambda s: s.retrying >= 1, WAIT_S)
    await receiver.start()
    clock.set(NOW + timedelta(seconds=5))  # past the retry's pause (FAST: a fraction of a second)
    got = await receiver.next()
    await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    assert got.headers["X-Sac-Ivr-Timestamp"] == str(int(NOW.timestamp()) + 5)  # signed afresh
    [row] = await rows(store)
    assert row.state is OutboxState.SENT and row.attempts >= 2


async def test_a_pop_too_old_to_help_the_agent_is_given_up(
    store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox]
) -> None:
    box = drainer(store, receiver, clock, outboxes, max_age_s=60)
    await pop_queued(box, clock)  # queued while nobody drains
    clock.set(NOW + timedelta(seconds=61))
    await box.start()
    await box.wait_until(lambda s: s.failed == 1, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.FAILED and "61 s old" in row.last_error
    assert receiver.shown == [] and receiver.refused == []


def test_a_url_without_a_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="secret of at least 16 characters"):
        load_settings(screen_pop={"url": "http://127.0.0.1:9/pops"})
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_settings(screen_pop={"url": "127.0.0.1:9/pops", "secret": SECRET})


@pytest.mark.parametrize("on", [True, False])
async def test_serve_pops_what_ami_reports_only_with_a_url(
    on: bool, store: Store, receiver: Receiver, clock: ManualClock, outboxes: list[Outbox]
) -> None:
    """The recorded event through a loopback AMI (panoramisk's parsing, repeated ChanVariable lines) and the
    wiring `ivr serve` uses; without a URL there is no sender and no pop is queued."""
    settings = load_settings(screen_pop={"url": receiver.url, "secret": SECRET} if on else {})
    box = Outbox(store, _senders(settings, clock=clock), clock=clock, conf=FAST)
    outboxes.append(box)
    await box.start()
    ami = FakeAmi()
    client = AmiClient(settings_for(await ami.start()))
    try:
        await client.connect()
        async with _screen_pops(settings, box, client):
            ami.send(0, RECORDED)
            await client.ping()  # answered after the event: it has been dispatched by then
            if on:
                got = await receiver.next()
                assert got.pop["protocol"] == PROTOCOL and got.pop["tickets"] == ["800000013", "800000014"]
    finally:
        await client.close()
        await ami.stop()
    assert (OutboxChannel.SCREEN_POP in _senders(settings, clock=clock)) is on
    assert len(await rows(store)) == (1 if on else 0)
