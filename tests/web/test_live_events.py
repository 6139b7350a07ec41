"""The live page's stream against a real live model served on a Unix socket, as `ivr serve` serves it: a
change reaches `/live/events` within a second, and the stream follows the unit through a restart."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.live import LiveModel, serve_snapshots
from ivr.engine.ports import CallInfo
from ivr.web.app import create_app

from .conftest import Site

WITHIN_S = 1.0
PROTOCOL = "202600000042"


@pytest.fixture
async def live_site(site: Site) -> AsyncIterator[Site]:
    """The console reading a socket in a short directory (a Unix socket's path is limited to 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="ivr-live-") as directory:
        console = replace(site.console, live_socket=Path(directory) / "live.sock")
        async with TestClient(TestServer(create_app(console))) as client:
            yield Site(console, client, site.clock)


async def next_state(stream: ClientResponse, deadline_s: float = WITHIN_S) -> dict[str, Any]:
    """The next state the stream sends (keepalive comments skipped), within `deadline_s`."""
    async with asyncio.timeout(deadline_s):
        while True:
            line = await stream.content.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                state: dict[str, Any] = json.loads(line[len(b"data: ") :])
                return state


async def state_where(stream: ClientResponse, holds: Any, deadline_s: float = WITHIN_S) -> dict[str, Any]:
    """The first state for which `holds(state)` is true, sent within `deadline_s`."""
    async with asyncio.timeout(deadline_s):
        while not holds(state := await next_state(stream, deadline_s)):
            pass
    return state


def protocols(state: dict[str, Any]) -> list[str]:
    return [call["protocol"] for call in (state["unit"] or {"calls": []})["calls"]]


async def test_a_call_appears_and_goes_within_a_second_of_its_events(live_site: Site) -> None:
    model = LiveModel(live_site.clock)
    async with serve_snapshots(live_site.console.live_socket, model) as listening:
        assert listening
        assert await live_site.log_in("vera") == 303
        async with live_site.client.get("/live/events") as stream:
            first = await next_state(stream, deadline_s=5.0)
            assert first["unit"] is not None and protocols(first) == []
            model.call_started(PROTOCOL, CallInfo(caller_id="3133334444"), "sac")
            started = await state_where(stream, lambda s: PROTOCOL in protocols(s))
            assert started["unit"]["calls"][0]["caller"] == "31******44"  # masked on the way
            model.node_entered(PROTOCOL, "sac", "menu")
            await state_where(stream, lambda s: s["unit"]["calls"][0]["node"] == "menu")
            model.call_ended(PROTOCOL)
            await state_where(stream, lambda s: protocols(s) == [])


async def test_the_stream_follows_the_unit_through_a_restart(live_site: Site) -> None:
    assert await live_site.log_in("vera") == 303
    async with live_site.client.get("/live/events") as stream:
        assert (await next_state(stream, deadline_s=5.0))["unit"] is None  # no `ivr serve` yet
        model = LiveModel(live_site.clock)
        async with serve_snapshots(live_site.console.live_socket, model):
            await state_where(stream, lambda s: s["unit"] is not None, deadline_s=5.0)
        down = await state_where(stream, lambda s: s["unit"] is None)
        assert "is not running" in down["down"]
        restarted = LiveModel(live_site.clock)
        restarted.call_started(PROTOCOL, CallInfo(caller_id=None), "sac")
        async with serve_snapshots(live_site.console.live_socket, restarted):
            back = await state_where(stream, lambda s: s["unit"] is not None, deadline_s=5.0)
            assert protocols(back) == [PROTOCOL]


async def test_the_live_state_names_the_release_new_calls_take(live_site: Site) -> None:
    """After a publish, the supervisor sees when the unit has loaded it: calls from then on take it."""
    history = live_site.console.library.history()
    model = LiveModel(live_site.clock)
    model.serving(history[-1].version)
    async with serve_snapshots(live_site.console.live_socket, model):
        assert await live_site.log_in("vera") == 303
        async with live_site.client.get("/live/events") as stream:
            first = await state_where(stream, lambda s: s["unit"] is not None, deadline_s=5.0)
            assert first["serving"] == f"release {history[-1].number}"
            model.serving("0123456789abcdef")  # a version the history does not have: named as it is
            await state_where(stream, lambda s: s["serving"] == "release 0123456789abcdef")
