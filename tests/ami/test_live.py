"""The live model on its own: AMI events as Asterisk 22 names their fields, this unit's calls as the engine
tells them, the snapshot a console reads, the change notices it waits on, and what `ivr live` prints."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr import app
from ivr.ami.client import AmiClient, QueueMemberState, QueueState
from ivr.ami.live import (
    TELL_INTERVAL_S,
    LiveModel,
    MergedSnapshots,
    follow_worker,
    read_snapshot,
    serve_snapshots,
    watch_snapshots,
)
from ivr.cli import live as live_cli
from ivr.clock import ManualClock
from ivr.engine.ports import CallInfo
from tests.engine.fakes import services

from .conftest import settings_for
from .fake_ami import WAIT_S

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))


def member_event(
    event: str, interface: str, *, status: str = "1", paused: str = "0", in_call: str = "0"
) -> dict[str, Any]:
    """A QueueMember* event of app_queue.c (Asterisk 22): the member's whole state in each."""
    return {
        "Event": event, "Queue": "billing", "MemberName": interface.rsplit("/", 1)[-1], "Interface": interface,
        "StateInterface": interface, "Membership": "dynamic", "Penalty": "0", "CallsTaken": "0", "LastCall": "0",
        "LastPause": "0", "LoginTime": "1764070000", "InCall": in_call, "Status": status, "Paused": paused,
        "PausedReason": "", "Ringinuse": "0", "Wrapuptime": "0",
    }  # fmt: skip


def caller_event(event: str, uid: str, **extra: str) -> dict[str, Any]:
    return {
        "Event": event,
        "Queue": "billing",
        "Channel": f"PJSIP/carrier-{uid}",
        "Uniqueid": uid,
        "Linkedid": uid,
        **extra,
    }


def agents(model: LiveModel, queue: str = "billing") -> dict[str, int]:
    return dict(model.snapshot()["queues"][queue]["agents"])


def test_members_from_login_to_logout_and_who_is_free() -> None:
    model = LiveModel(ManualClock(T0))
    model.apply(member_event("QueueMemberAdded", "PJSIP/agent-101"))
    model.apply(member_event("QueueMemberAdded", "PJSIP/agent-102"))
    model.apply(member_event("QueueMemberAdded", "PJSIP/agent-103", status="5"))  # phone not registered
    assert agents(model) == {"logged_in": 2, "free": 2, "ringing": 0, "busy": 0, "paused": 0}

    model.apply(member_event("QueueMemberPause", "PJSIP/agent-102", paused="1"))
    model.apply(
        {**caller_event("AgentCalled", "1.1"), "Interface": "PJSIP/agent-101", "DestChannel": "PJSIP/agent-101-01"}
    )
    assert agents(model) == {"logged_in": 2, "free": 0, "ringing": 1, "busy": 0, "paused": 1}  # ringing is not free

    model.apply(
        {**caller_event("AgentConnect", "1.1"), "Interface": "PJSIP/agent-101", "HoldTime": "4", "RingTime": "2"}
    )
    assert agents(model)["busy"] == 1
    model.apply(
        {**caller_event("AgentComplete", "1.1"), "Interface": "PJSIP/agent-101", "TalkTime": "60", "Reason": "caller"}
    )
    model.apply(member_event("QueueMemberStatus", "PJSIP/agent-103", status="1"))  # the phone registers
    model.apply(member_event("QueueMemberRemoved", "PJSIP/agent-102", paused="1"))
    assert agents(model) == {"logged_in": 2, "free": 2, "ringing": 0, "busy": 0, "paused": 0}

    model.apply(member_event("QueueMemberStatus", "PJSIP/agent-103", status="2"))  # on a call outside the queue
    assert agents(model)["busy"] == 1


def test_callers_waiting_and_the_longest_wait() -> None:
    clock = ManualClock(T0)
    model = LiveModel(clock)
    model.apply(caller_event("QueueCallerJoin", "1.1", Position="1", Count="1", CallerIDNum="31988776655"))
    clock.set(T0 + timedelta(seconds=20))
    model.apply(caller_event("QueueCallerJoin", "1.2", Position="2", Count="2", CallerIDNum="2133335555"))
    clock.set(T0 + timedelta(seconds=45))
    billing = model.snapshot()["queues"]["billing"]
    assert (billing["waiting"], billing["longest_wait_s"]) == (2, 45)

    model.apply(caller_event("QueueCallerAbandon", "1.1", Position="1", OriginalPosition="1", HoldTime="45"))
    assert model.snapshot()["queues"]["billing"]["longest_wait_s"] == 25
    model.apply(caller_event("QueueCallerLeave", "1.2", Position="1", Count="0"))
    billing = model.snapshot()["queues"]["billing"]
    assert (billing["waiting"], billing["longest_wait_s"]) == (0, 0)


def test_a_call_in_the_ivr_with_its_node_and_queue_masked_safe() -> None:
    clock = ManualClock(T0)
    model = LiveModel(clock)
    info = CallInfo(caller_id="+5531988776655", unique_id="1764070000.17", linked_id="1764070000.17")
    model.call_started("202600000017", info, "main")
    clock.set(T0 + timedelta(seconds=3))
    model.node_entered("202600000017", "billing", "to_billing_queue")
    model.apply(caller_event("QueueCallerJoin", "1764070000.17", CallerIDNum="31988776655"))

    snapshot = model.snapshot()
    assert snapshot["calls"] == [
        {
            "protocol": "202600000017", "caller": "31*******55", "flow": "billing", "node": "to_billing_queue",
            "since": T0.isoformat(), "node_since": clock().isoformat(), "queue": "billing",
        }
    ]  # fmt: skip
    text = json.dumps(snapshot)  # plain data all the way down
    assert "988776655" not in text and "5531988776655" not in text

    model.call_ended("202600000017")
    assert model.snapshot()["calls"] == []


def test_call_backs_owed_show_beside_the_queues_even_without_one_in_ami() -> None:
    model = LiveModel(ManualClock(T0))
    model.apply(member_event("QueueMemberAdded", "PJSIP/agent-101"))
    model.set_callbacks_pending({"billing": 2, "commercial": 1, "technical": 0})
    queues = model.snapshot()["queues"]
    assert {name: q["callbacks_pending"] for name, q in queues.items()} == {"billing": 2, "commercial": 1}


def test_before_any_ami_login_the_queues_are_stale() -> None:
    assert LiveModel(ManualClock(T0)).snapshot()["ami"] == {
        "connected": False,
        "synced": False,
        "stale_since": T0.isoformat(),
    }


async def test_a_subscriber_is_told_of_a_change_and_changes_coalesce() -> None:
    model = LiveModel(ManualClock(T0))
    subscription = model.subscribe()
    model.apply(member_event("QueueMemberAdded", "PJSIP/agent-101"))
    model.apply(member_event("QueueMemberPause", "PJSIP/agent-101", paused="1"))  # before the reader comes back
    snapshot = await asyncio.wait_for(subscription.next(), WAIT_S)
    assert snapshot["queues"]["billing"]["agents"]["paused"] == 1  # the latest state, once

    waiting = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing changed since
    model.call_started("202600000017", CallInfo(caller_id=None), "main")
    assert (await asyncio.wait_for(waiting, WAIT_S))["calls"][0]["caller"] == "withheld"

    model.unsubscribe(subscription)
    model.call_ended("202600000017")
    after = asyncio.create_task(subscription.next())
    await asyncio.sleep(0)
    assert not after.done()  # no longer told
    after.cancel()


def test_a_ringing_member_is_not_available_to_the_dialer_either() -> None:
    ringing = QueueMemberState.from_fields(
        {"Name": "Agente 101", "Location": "PJSIP/agent-101", "Status": "6", "Paused": "0", "InCall": "0"}
    )
    free = QueueMemberState.from_fields(
        {"Name": "Agente 102", "Location": "PJSIP/agent-102", "Status": "1", "Paused": "0", "InCall": "0"}
    )
    state = QueueState("billing", (ringing, free), callers_waiting=0, average_hold_s=0, longest_wait_s=0)
    assert (state.logged_in, state.available) == (2, 1)


async def test_ivr_live_prints_the_snapshot_of_the_running_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    socket = tmp_path / "live.sock"
    async with app.live_model(services(), AmiClient(settings_for(9)), socket=socket) as live:
        live.call_started("202600000017", CallInfo(caller_id="31988776655"), "main")
        assert socket.stat().st_mode & 0o777 == 0o600  # this user only
        monkeypatch.setattr(app, "live_socket", lambda _settings: socket)
        assert await live_cli._live(argparse.Namespace()) == 0  # noqa: SLF001
    printed = json.loads(capsys.readouterr().out)
    assert [c["caller"] for c in printed["calls"]] == ["31*******55"]
    assert printed["ami"]["connected"] is False  # this unit's AMI never answered
    assert not socket.exists()


async def test_the_supervisors_socket_shows_every_workers_calls_and_the_unit_once(tmp_path: Path) -> None:
    """`ivr serve --workers 2`: each worker serves its own live-<n>.sock; the supervisor's live.sock merges them."""
    clock = ManualClock(T0)
    workers = [LiveModel(clock) for _ in range(2)]
    merged = MergedSnapshots(clock)
    async with contextlib.AsyncExitStack() as stack:
        for n, model in enumerate(workers):
            model.set_callbacks_pending({"billing": 2})  # each worker reads the same store
            await stack.enter_async_context(serve_snapshots(tmp_path / f"live-{n}.sock", model))
        await stack.enter_async_context(serve_snapshots(tmp_path / "live.sock", merged))
        followers = [asyncio.create_task(follow_worker(merged, n, tmp_path / f"live-{n}.sock")) for n in range(2)]
        stack.callback(lambda: [task.cancel() for task in followers])
        updates = aiter(watch_snapshots(tmp_path / "live.sock", WAIT_S))
        async with asyncio.timeout(WAIT_S):
            while (await anext(updates)).get("workers") != 2:
                pass  # until both workers answered
            workers[0].call_started("202600000017", CallInfo(caller_id="31988776655"), "main")
            clock.set(T0 + timedelta(seconds=1))
            workers[1].call_started("202600000025", CallInfo(caller_id=None), "main")
            while len((snapshot := await anext(updates))["calls"]) < 2:
                pass
        assert [c["protocol"] for c in snapshot["calls"]] == ["202600000017", "202600000025"]
        assert snapshot["queues"]["billing"]["callbacks_pending"] == 2  # the unit's, not added up
        assert (await read_snapshot(tmp_path / "live.sock", WAIT_S))["calls"] == snapshot["calls"]
        # Workers tell their supervisor only what changed: a call's new node, a call gone.
        workers[0].node_entered("202600000017", "main", "type_ticket_number")
        workers[1].call_ended("202600000025")
        async with asyncio.timeout(WAIT_S):
            while [(c["protocol"], c["node"]) for c in (await anext(updates))["calls"]] != [
                ("202600000017", "type_ticket_number")
            ]:
                pass
        await updates.aclose()


async def test_a_subscriber_of_changes_is_told_only_the_calls_that_changed(tmp_path: Path) -> None:
    """The supervisor follows its workers so: re-telling every call at each node one of them visits cost
    a worker with hundreds of calls up more CPU than the calls. A call waiting in a queue is a change."""
    model = LiveModel(ManualClock(T0))
    for n in range(50):
        model.call_started(f"2026{n:08d}", CallInfo(caller_id="31988776655", unique_id=f"ivr-{n}"), "main")
    async with serve_snapshots(tmp_path / "live.sock", model):
        told = aiter(watch_snapshots(tmp_path / "live.sock", WAIT_S, changes=True))
        assert len((await anext(told))["calls"]) == 50  # the snapshot at once
        model.node_entered("202600000007", "main", "main_menu")
        model.call_ended("202600000008")
        async with asyncio.timeout(WAIT_S):
            changed = (await anext(told))["calls_changed"]
        assert changed.keys() == {"202600000007", "202600000008"}
        assert changed["202600000007"]["node"] == "main_menu" and changed["202600000008"] is None
        model.apply({"Event": "QueueCallerJoin", "Queue": "billing", "Uniqueid": "ivr-9", "Linkedid": "ivr-9"})
        async with asyncio.timeout(WAIT_S):
            update = await anext(told)
        assert [(p, row["queue"]) for p, row in update["calls_changed"].items()] == [("202600000009", "billing")]
        assert update["queues"]["billing"]["waiting"] == 1  # the unit's state, whole
        await told.aclose()


async def test_a_burst_of_changes_is_told_as_a_few_snapshots_the_last_one_whole(tmp_path: Path) -> None:
    """Every node a call visits is a change: a subscriber (the supervisor, the console) is told at most one
    snapshot per `TELL_INTERVAL_S`, the changes meanwhile coalesced, so a busy unit does not spend its CPU
    on snapshots; the last one told still has every change."""
    model = LiveModel(ManualClock(T0))
    async with serve_snapshots(tmp_path / "live.sock", model):
        updates = aiter(watch_snapshots(tmp_path / "live.sock", WAIT_S))
        told = [await anext(updates)]  # the snapshot at once
        started = asyncio.get_running_loop().time()
        for n in range(200):  # 200 calls arriving within a fraction of the interval
            model.call_started(f"2026{n:08d}", CallInfo(caller_id="31988776655"), "main")
            await asyncio.sleep(0)
        async with asyncio.timeout(WAIT_S):
            while len(told[-1]["calls"]) < 200:
                told.append(await anext(updates))
        elapsed = asyncio.get_running_loop().time() - started
        await updates.aclose()
    assert len(told) - 1 <= 2 + elapsed / TELL_INTERVAL_S, f"{len(told) - 1} snapshots in {elapsed:.2f} s"
