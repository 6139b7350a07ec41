"""`AmiQueueWatch`: a queue's live state for the `queue` verb, or None when AMI cannot tell it in time."""

from __future__ import annotations

import asyncio
import time

from ivr.ami.client import AmiClient
from ivr.ami.queues import AmiQueueWatch
from ivr.engine.ports import QueueLoad

from .conftest import settings_for
from .fake_ami import FakeAmi, queue_status_reply


async def test_the_state_from_queue_status(ami: FakeAmi, client: AmiClient) -> None:
    ami.responders["queuestatus"] = lambda f: queue_status_reply(f["ActionID"], f["Queue"])
    load = await AmiQueueWatch(client, timeout_s=1.0).load("technical")
    # Three members: one paused, one free, one whose phone is unavailable; one caller waiting.
    assert load == QueueLoad(waiting=1, agents=1, available=1, hold_s=42, talk_s=300)


async def test_no_reply_in_time_is_unknown(ami: FakeAmi, client: AmiClient) -> None:
    started = time.monotonic()
    assert await AmiQueueWatch(client, timeout_s=0.2).load("technical") is None  # the fake never answers
    assert time.monotonic() - started < 1.0


async def test_ami_down_is_unknown_at_once() -> None:
    client = AmiClient(settings_for(9))  # never connected
    assert await asyncio.wait_for(AmiQueueWatch(client, timeout_s=1.0).load("technical"), 0.5) is None


async def test_an_unknown_queue_is_unknown(ami: FakeAmi, client: AmiClient) -> None:
    ami.responders["queuestatus"] = lambda f: queue_status_reply(f["ActionID"], "billing")
    assert await AmiQueueWatch(client, timeout_s=1.0).load("technical") is None
