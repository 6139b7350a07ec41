"""The AMI wrapper against a fake AMI server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from panoramisk.message import Message

from ivr.ami.client import AmiActionError, AmiClient, AmiLoginError, AmiTimeout
from ivr.ami.live import LiveModel, Subscription, channel_variables
from ivr.clock import ManualClock

from .conftest import settings_for
from .fake_ami import WAIT_S, FakeAmi, Fields, core_show_channels_reply, queue_status_reply
from .test_live import T0


async def test_replies_are_matched_by_action_id_even_when_interleaved(ami: FakeAmi, client: AmiClient) -> None:
    held: list[Fields] = []
    ami.responders["queuestatus"] = lambda f: held.append(f) or None  # type: ignore[func-returns-value]
    first = asyncio.create_task(client.queue_status("technical"))
    second = asyncio.create_task(client.queue_status("billing"))
    await ami.next_action("QueueStatus")
    await ami.next_action("QueueStatus")
    by_queue = {f["Queue"]: queue_status_reply(f["ActionID"], f["Queue"]) for f in held}
    # Answer the second request first, its messages interleaved with the first's, and an event in between.
    tech, billing = by_queue["technical"], by_queue["billing"]
    for pair in zip(billing, tech, strict=True):
        for message in pair:
            ami.send(0, message)
        ami.send(0, {"Event": "Newchannel", "Channel": "PJSIP/x-1", "Uniqueid": "1.1"})
    technical = await asyncio.wait_for(first, WAIT_S)
    assert technical.queue == "technical"
    assert (technical.logged_in, technical.paused, technical.available) == (2, 1, 1)
    assert (technical.callers_waiting, technical.average_hold_s, technical.longest_wait_s) == (1, 42, 37)
    assert (await asyncio.wait_for(second, WAIT_S)).queue == "billing"


async def test_every_action_has_our_timeout(ami: FakeAmi, client: AmiClient) -> None:
    with pytest.raises(AmiTimeout, match="QueueRemove: no reply within 0.5 s"):
        await client.queue_remove("technical", "PJSIP/agent-101")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"Action": "QueuePause", "Queue": "technical", "Reason": "lunch\r\nAction: Originate"}, "header Reason"),
        ({"Action": "QueuePause", "Queue": "technical", "Reason": "nul\0"}, "header Reason"),
        ({"Action": "Originate", "Variable": ["A=1", "B=2\nAction: Logoff"]}, "header Variable"),
        ({"Action": "Ping", "X\r\nAction: Logoff": "1"}, "header name"),
    ],
)
async def test_control_characters_in_a_header_are_refused_before_anything_is_sent(
    ami: FakeAmi, client: AmiClient, fields: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        await client.action(fields)
    await client.ping()  # the next thing on the wire is our ping: nothing of the refused action went out
    _, first = await ami.received.get()
    while first.get("Action") == "Login":
        _, first = await ami.received.get()
    assert first["Action"] == "Ping" and "Reason" not in first and "Variable" not in first


async def test_queue_add_and_an_error_reply(ami: FakeAmi, client: AmiClient) -> None:
    ami.responders["queueadd"] = lambda f: [
        {"Response": "Success", "ActionID": f["ActionID"], "Message": "Added interface to queue"}
    ]
    ami.responders["queueremove"] = lambda f: [
        {"Response": "Error", "ActionID": f["ActionID"], "Message": "Unable to remove interface: Not there"}
    ]
    await client.queue_add("technical", "PJSIP/agent-101", member_name="Agente 101")
    _, fields = await ami.next_action("QueueAdd")
    assert (fields["Queue"], fields["Interface"], fields["MemberName"], fields["Paused"]) == (
        "technical",
        "PJSIP/agent-101",
        "Agente 101",
        "false",
    )
    with pytest.raises(AmiActionError, match="Not there"):
        await client.queue_remove("technical", "PJSIP/agent-101")


async def test_refused_login_says_which_settings_to_check(ami: FakeAmi) -> None:
    port = ami._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    c = AmiClient(settings_for(port, secret="wrong"))
    with pytest.raises(AmiLoginError, match="ami.secret"):
        await c.connect()
    await c.close()


async def test_watchdog_reconnects_when_asterisk_goes_silent(ami: FakeAmi) -> None:
    port = ami._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    c = AmiClient(settings_for(port, ping_interval_s=0.05, action_timeout_s=0.2))
    await c.connect()
    try:
        await ami.next_action("Ping")  # the watchdog pings on connection 0
        ami.answer_pings = False  # Asterisk hangs: the TCP connection stays open, nothing answers
        connection, _ = await ami.next_action("Login")
        assert connection == 1 and c.reconnects == 1
        ami.answer_pings = True
        await c.wait_logged_in(WAIT_S)
        ami.responders["queueadd"] = lambda f: [{"Response": "Success", "ActionID": f["ActionID"]}]
        await c.queue_add("billing", "PJSIP/agent-102")  # usable again
    finally:
        await c.close()


async def test_originate_is_never_resent_after_a_reconnect(ami: FakeAmi, client: AmiClient) -> None:
    ami.responders["queuestatus"] = lambda f: None  # connection 0 never answers
    originate = asyncio.create_task(client.originate("Local/30033336@sac-inbound", context="sac-test", exten="s"))
    pending = asyncio.create_task(
        client.action({"Action": "QueueStatus", "Queue": "technical"}, timeout_s=WAIT_S, as_list=True)
    )
    await ami.next_action("Originate")
    await ami.next_action("QueueStatus")
    ami.responders["queuestatus"] = lambda f: queue_status_reply(f["ActionID"])
    ami.drop(0)  # Asterisk restarts
    seen_on_new_connection: list[str] = []
    async with asyncio.timeout(WAIT_S):
        while "QueueStatus" not in seen_on_new_connection:  # panoramisk re-sends it after FullyBooted
            connection, fields = await ami.received.get()
            assert connection == 1
            seen_on_new_connection.append(fields["Action"])
            resent = fields
    assert seen_on_new_connection == ["Login", "QueueStatus"]  # no second Originate
    reply = await asyncio.wait_for(pending, WAIT_S)  # the re-sent action's reply still reaches its caller
    assert isinstance(reply, list) and reply[0]["ActionID"] == resent["ActionID"]
    originate.cancel()
    with pytest.raises(asyncio.CancelledError):
        await originate


async def test_repeated_channel_variables_arrive_as_a_list(ami: FakeAmi, client: AmiClient) -> None:
    called: list[Message] = []
    client.on_event("AgentCalled", called.append)
    ami.send(0, {"Event": "AgentCalled", "Queue": "technical", "Uniqueid": "1764070000.17",
                 "Interface": "PJSIP/agent-102",
                 "ChanVariable": ["IVR_PROTOCOL=202600000017", "IVR_REASON=sem conexão"]})  # fmt: skip
    await client.ping()  # answered after the event: it has been dispatched by then
    assert channel_variables(called[0]["ChanVariable"]) == {"IVR_PROTOCOL": "202600000017", "IVR_REASON": "sem conexão"}


async def until(model: LiveModel, changes: Subscription, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first snapshot, now or after a change, for which ``ok`` holds."""
    async with asyncio.timeout(WAIT_S):
        snapshot = model.snapshot()
        while not ok(snapshot):
            snapshot = await changes.next()
    return snapshot


def after_the_drop(aid: str) -> list[Fields]:
    """QueueStatus once the caller has left and Agente 101 came back from lunch, while AMI was down."""
    reply = [m for m in queue_status_reply(aid) if m.get("Event") != "QueueEntry"]
    return [{**m, "Calls": "0"} if m.get("Event") == "QueueParams" else {**m, "Paused": "0"} for m in reply]


async def test_the_live_model_resynchronises_when_asterisk_comes_back(ami: FakeAmi) -> None:
    port = ami._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    c = AmiClient(settings_for(port))
    model = LiveModel(ManualClock(T0))
    model.attach(c)
    changes = model.subscribe()
    ami.responders["queuestatus"] = lambda f: queue_status_reply(f["ActionID"])
    ami.responders["coreshowchannels"] = lambda f: core_show_channels_reply(f["ActionID"], "1764070000.17")
    await c.connect()
    try:
        synced = await until(model, changes, lambda s: s["ami"]["synced"])
        assert synced["queues"]["technical"] == {
            "waiting": 1, "longest_wait_s": 37, "callbacks_pending": 0,
            "agents": {"logged_in": 2, "free": 1, "ringing": 0, "busy": 0, "paused": 1},
        }  # fmt: skip
        assert synced["channels"] == 1 and synced["ami"]["stale_since"] is None

        ami.drop(0)  # Asterisk restarts; what happens meanwhile is never sent as events
        down = await until(model, changes, lambda s: not s["ami"]["connected"])
        assert down["ami"] == {"connected": False, "synced": False, "stale_since": T0.isoformat()}
        ami.responders["queuestatus"] = lambda f: after_the_drop(f["ActionID"])
        ami.responders["coreshowchannels"] = lambda f: core_show_channels_reply(f["ActionID"])

        back = await until(model, changes, lambda s: s["ami"]["synced"])
        assert back["queues"]["technical"]["waiting"] == 0 and back["channels"] == 0
        assert back["queues"]["technical"]["agents"]["free"] == 2  # as Asterisk says now
    finally:
        await c.close()
        await model.aclose()
