"""Waiting in a queue on a real Asterisk 22: the queue's state as the IVR reads it over AMI before the
caller joins, and the call-back key pressed while waiting handing the call back to the IVR.

A stand-in FastAGI responder plays the IVR's part (the AGI channel's side is tested on transcripts in
tests/agi); what is proved here is Asterisk's: QueueStatus as `AmiQueueWatch` reads it, and Queue()'s exit
with a key (queues.conf ``context``) returning to the AGI with the channel in the exit context.
"""

from __future__ import annotations

import asyncio

import pytest

from ivr.agi.channel import QUEUE_KEY_CONTEXT
from ivr.ami.client import AmiClient
from ivr.ami.queues import AmiQueueWatch
from ivr.asterisk.sipp import CallScript, Keys, Pause
from ivr.engine.channel import CALLBACK_KEY
from ivr.engine.ports import QueueLoad

from .ami import Ami
from .conftest import RINGING_AGENT_INTERFACE, E2EAsterisk, queue_member
from .fastagi import FastAgiStub
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
            assert await watch.load("technical") == QueueLoad(waiting=0, agents=1, available=1)

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
