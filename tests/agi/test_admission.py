"""Only Asterisk, through the shipped dialplan, starts calls on the FastAGI port: the per-install key in
the AGI URL, one of Asterisk's addresses, an entry flow; and idle connections cannot take every socket."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr.agi.admission import Admission
from ivr.agi.server import AgiServer, raise_open_files_limit
from ivr.engine.channel import Channel

from .fake_asterisk import WAIT_S, FakeAsterisk, settings_for_tests

KEY = "k3y-of-this-install-0123"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[AgiServer, list[tuple[str, dict[str, str]]]]]:
    """Our server asking for KEY from 127.0.0.1, entry flow sac; the calls that reached the flow."""
    reached: list[tuple[str, dict[str, str]]] = []

    async def handler(channel: Channel, flow: str) -> None:
        reached.append((flow, dict(channel.info.params)))

    settings = settings_for_tests(tmp_path, max_unidentified=2)
    server = AgiServer(handler, settings, admission=Admission.of(settings, KEY), host="127.0.0.1", port=0)
    await server.start()
    yield server, reached
    await server.drain(1)


async def refused(port: int, **headers: Any) -> bool:
    """The IVR closed the connection without asking Asterisk anything (no flow ran)."""
    peer = await FakeAsterisk.call(port, **headers)
    return await peer.closed_by_ivr()


async def test_a_call_with_the_key_runs_and_the_flow_never_sees_the_key(served: Any) -> None:
    server, reached = served
    peer = await FakeAsterisk.call(server.port, script=f"sac?lang=pt_BR&key={KEY}")
    await peer.started()
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await peer.closed_by_ivr()
    assert reached == [("sac", {"lang": "pt_BR"})]


@pytest.mark.parametrize("script", ["sac?lang=pt_BR", "sac?key=", f"sac?key={KEY[:-1]}", f"sac?key={KEY}x"])
async def test_a_call_without_the_right_key_is_refused_before_any_flow(served: Any, script: str) -> None:
    server, reached = served
    assert await refused(server.port, script=script)
    assert reached == []


async def test_only_entry_flows_may_start_a_call(served: Any) -> None:
    server, reached = served
    assert await refused(server.port, script=f"identify?key={KEY}")  # it trusts an identified caller
    assert reached == []


async def test_a_peer_that_is_not_asterisk_is_refused(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path).model_copy()
    settings = settings.model_copy(update={"agi": settings.agi.model_copy(update={"asterisk_hosts": ["10.0.0.7"]})})

    async def handler(channel: Channel, flow: str) -> None:
        raise AssertionError("no flow may run")

    server = AgiServer(handler, settings, admission=Admission.of(settings, KEY), host="127.0.0.1", port=0)
    await server.start()
    try:
        assert await refused(server.port, script=f"sac?key={KEY}")
    finally:
        await server.drain(1)


async def test_idle_connections_beyond_the_cap_are_closed_and_calls_go_on(served: Any) -> None:
    server, reached = served
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]  # never send a block
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # the third: closed at once
    writer.close()
    for _, idle_writer in idle:
        idle_writer.close()
    # Once they are gone (or time out), a call goes through.
    async with asyncio.timeout(WAIT_S):
        while True:
            peer = await FakeAsterisk.call(server.port, script=f"sac?key={KEY}")
            try:
                await peer.started()
                break
            except AssertionError:
                await asyncio.sleep(0.05)
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert reached == [("sac", {})]


def test_the_open_files_limit_goes_up_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        raised = raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert raised == hard or (hard == resource.RLIM_INFINITY and raised >= 1024)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
