"""`AmiQueueWatch`: the engine's `QueueWatch` over AMI ``QueueStatus``.

A caller about to join a queue is told their place and the wait from it. It answers within its own bound
or not at all: AMI down, slow or refusing is a reason to say nothing, never to keep the caller from the
queue (the `queue` verb then joins untold).
"""

from __future__ import annotations

import asyncio
import logging

from ivr.ami.client import AmiClient, AmiError, QueueState
from ivr.engine.ports import QueueLoad

log = logging.getLogger(__name__)


def queue_load(state: QueueState) -> QueueLoad:
    return QueueLoad(
        waiting=state.callers_waiting,
        agents=state.logged_in - state.paused,
        available=state.available,
        hold_s=state.average_hold_s,
        talk_s=state.average_talk_s,
    )


class AmiQueueWatch:
    def __init__(self, client: AmiClient, *, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s  # settings.queue_wait.state_timeout_s

    async def load(self, queue: str) -> QueueLoad | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                return queue_load(await self._client.queue_status(queue))
        except (AmiError, TimeoutError, OSError) as exc:
            log.warning("queue %s: live state unknown (%s); the caller joins untold", queue, exc)
            return None
