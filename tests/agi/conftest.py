from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ivr.agi.admission import OPEN
from ivr.agi.server import AgiServer
from ivr.engine.channel import Channel

from .fake_asterisk import WAIT_S, FakeAsterisk, settings_for_tests

Script = Callable[[Channel], Awaitable[Any]]


class CallRig:
    """Our real AgiServer on a loopback port; each call runs `script` and reports what it returned
    (or raised) on `outcome`."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[AgiServer] = []
        self.flows: list[tuple[str, Channel]] = []

    async def server(
        self, script: Script, prompt_lengths: Mapping[str, float] | None = None, **agi: float | str
    ) -> tuple[AgiServer, asyncio.Queue[Any]]:
        outcomes: asyncio.Queue[Any] = asyncio.Queue()

        async def handler(channel: Channel, flow: str) -> None:
            self.flows.append((flow, channel))
            try:
                await outcomes.put(await script(channel))
            except Exception as exc:
                await outcomes.put(exc)
                raise

        settings = settings_for_tests(self.tmp_path, prompt_lengths, **agi)
        server = AgiServer(handler, settings, admission=OPEN, host="127.0.0.1", port=0)
        await server.start()
        self.servers.append(server)
        return server, outcomes

    async def call(
        self, script: Script, prompt_lengths: Mapping[str, float] | None = None, **agi: float | str
    ) -> tuple[FakeAsterisk, asyncio.Queue[Any]]:
        server, outcomes = await self.server(script, prompt_lengths, **agi)
        peer = await FakeAsterisk.call(server.port)
        await peer.started()
        return peer, outcomes


async def outcome(outcomes: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(outcomes.get(), WAIT_S)


@pytest.fixture(autouse=True)
async def close_peers() -> AsyncIterator[None]:
    yield
    while FakeAsterisk.opened:  # inside the test's event loop, which closes after this
        FakeAsterisk.opened.pop().close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[CallRig]:
    rig = CallRig(tmp_path)
    yield rig
    while FakeAsterisk.opened:  # calls still waiting on their peer end at once (CallerHangup)
        FakeAsterisk.opened.pop().close()
    for server in rig.servers:
        assert await server.drain(1.0) == 0
