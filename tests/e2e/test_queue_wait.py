"""Waiting in a queue on a real Asterisk 22: the queue's state as the IVR reads it over AMI before the
caller joins, and the call-back key pressed while waiting handing the call back to the IVR.

A stand-in FastAGI responder plays the IVR's part (the AGI channel's side is tested on transcripts in
tests/agi); what is proved there is Asterisk's: QueueStatus as `AmiQueueWatch` reads it, and Queue()'s exit
with a key (queues.conf ``context``) returning to the AGI with the channel in the exit context. Then the
fault: a real IVR whose AMI is down still queues its callers (tests/e2e/test_calls.py has the IVR with AMI).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from ivr.agi.channel import QUEUE_KEY_CONTEXT
from ivr.ami.client import AmiClient
from ivr.ami.queues import AmiQueueWatch
from ivr.asterisk.sipp import CallScript, Keys, Pause
from ivr.engine.channel import CALLBACK_KEY

from .ami import Ami
from .conftest import RINGING_AGENT_INTERFACE, E2EAsterisk, queue_member, serve_ivr
from .fastagi import FastAgiStub
from .ivr_process import IvrProcess
from .scripts import Journeys, answered_call, visit_of
from .store import StoreReader
from .test_plumbing import _event

pytestmark = pytest.mark.e2e


async def test_the_queue_state_is_read_and_the_call_back_key_leaves_the_queue(
    asterisk: E2EAsterisk, agi: FastAgiStub, ami: Ami
) -> None:
    watch_client = AmiClient(asterisk.settings.ami)
    await watch_client.connect()
    try:
        async with queue_member(ami, "technical", RINGING_AGENT_INTERFACE):
            watch = AmiQueueWatch(watch_client, timeout_s=2.0)
            load = await watch.load("technical")
            # Hold and talk times are the queue's history, which earlier calls of the session may have made.
            assert load is not None and (load.waiting, load.agents, load.available) == (0, 1, 1)

            # The caller presses 1 three seconds into the call, while Queue() rings an agent who never answers.
            steps = (Pause(3.0), Keys(CALLBACK_KEY))
            call = asyncio.create_task(asterisk.call(CallScript("30033336", "3133334444", steps=steps, end="wait_bye")))
            session = await agi.next_session()
            channel = session.env["agi_channel"]
            assert (await session.command("ANSWER"))[0] == 200
            assert await session.command("EXEC Queue technical,c,,,30", timeout_s=15) == (200, "0")
            assert await session.command("GET VARIABLE CONTEXT") == (200, f"1 ({QUEUE_KEY_CONTEXT})")
            left = await ami.wait_event(_event("QueueCallerLeave", Channel=channel), timeout_s=2)
            assert left["Queue"] == "technical"
            # The IVR still holds the call (it offers the call back), then lets go of it done: the dialplan
            # goes on in the exit context, which hangs up rather than sending the caller to the fallback.
            assert await session.command("SET VARIABLE IVR_DONE 1") == (200, "1")
            await session.close()
            done = _event("Newexten", Channel=channel, Context=QUEUE_KEY_CONTEXT, Application="Hangup")
            await ami.wait_event(done, timeout_s=5)
            result = await call
            assert result.hung_up_by == "asterisk", result.summary()
    finally:
        await watch_client.close()


def _closed_port() -> int:
    """A loopback TCP port nobody listens on (an AMI that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ivr_without_ami(asterisk: E2EAsterisk) -> Iterator[IvrProcess]:
    """`ivr serve` whose AMI is down (nobody listens on its port) for the whole test."""
    with serve_ivr(asterisk, {"IVR_AMI__PORT": str(_closed_port())}) as process:
        yield process


async def test_with_ami_down_the_caller_still_queues_told_nothing(
    asterisk: E2EAsterisk, ivr_without_ami: IvrProcess, ami: Ami
) -> None:
    stored = StoreReader(ivr_without_ami.database)
    before = stored.protocols()
    script = await Journeys(ivr_without_ami).script(None, "0")  # withheld: the shortest way to a person
    async with queue_member(ami, "technical"):  # an agent who answers
        call = asyncio.create_task(answered_call(asterisk, script, timeout_s=script.steps_s + 20))
        joined = await ami.wait_event(
            _event("QueueCallerJoin", Queue="technical"), timeout_s=script.steps_s + 15
        )
        await ami.wait_event(_event("AgentConnect", Channel=joined["Channel"]), timeout_s=10)
        live = await ivr_without_ami.live()  # the unit's live model: its call, at its node, queues unknown
        assert [(c["flow"], c["node"], c["caller"]) for c in live["calls"]] == [("sac", "agent", "withheld")], live
        assert live["ami"]["connected"] is False and live["ami"]["stale_since"], live
        await ami.action("Hangup", Channel=joined["Channel"])
        result = await call
    assert result.hung_up_by == "asterisk", result.summary()
    (stored_call,) = await stored.ended_calls(before, 1)
    assert stored_call.path[-2:] == ["main_menu", "agent"], stored_call.path  # nothing said in between
    assert visit_of(stored_call, "agent")[2] == "answered:technical"
    assert stored_call.outcome == "queue:technical", stored_call
