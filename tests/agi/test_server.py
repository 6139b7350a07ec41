"""The FastAGI server: routing, peers that misbehave before the header block ends, SIGTERM drain."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sys
import types
from pathlib import Path

import pytest

from ivr.agi.admission import OPEN
from ivr.agi.server import AgiServer, serve
from ivr.cli import serve as cli
from ivr.config import Settings
from ivr.engine.channel import Channel

from .conftest import CallRig, outcome
from .fake_asterisk import WAIT_S, FakeAsterisk, settings_for_tests


async def test_request_path_routes_to_the_flow_with_its_params(rig: CallRig) -> None:
    async def script(ch: Channel) -> tuple[str | None, str, dict[str, str]]:
        return ch.info.caller_id, ch.info.dialled, dict(ch.info.params)

    server, outcomes = await rig.server(script)
    peer = await FakeAsterisk.call(server.port, script="sac?lang=pt_BR")
    await peer.started(linked_id="1764069999.3")
    assert await outcome(outcomes) == ("1133334444", "30033336", {"lang": "pt_BR"})
    flow, channel = rig.flows[0]
    assert flow == "sac" and channel.info.linked_id == "1764069999.3"
    assert isinstance(channel, Channel)  # AgiChannel satisfies the engine's protocol


@pytest.mark.parametrize(
    "sent",
    [b"", b"agi_network: yes\nagi_network_script: sac\n", b"agi_network: yes\nagi_network_scr"],
    ids=["nothing", "half-block", "inside-a-line"],
)
async def test_peer_closing_before_the_block_ends_hangs_nothing(rig: CallRig, sent: bytes) -> None:
    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    server, outcomes = await rig.server(script)
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(sent)
    writer.close()
    # The loop is not frozen (panoramisk spins on EOF here): a real call right after goes through.
    peer = await FakeAsterisk.call(server.port)
    await peer.started()
    await peer.expect('STREAM FILE "sac/pt_BR/welcome" "0123456789*#"', "200 result=0 endpos=10")
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await outcome(outcomes) == ""
    assert len(rig.flows) == 1
    async with asyncio.timeout(WAIT_S):
        while server.active_calls:  # bounded by the timeout; each turn yields to the server
            await asyncio.sleep(0)


async def test_peer_that_never_finishes_the_block_is_dropped(rig: CallRig) -> None:
    async def script(ch: Channel) -> None:
        raise AssertionError("no flow may run without a header block")

    server, _ = await rig.server(script, header_timeout_s=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n")
    assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # closed by the server
    writer.close()
    assert not rig.flows


async def test_thousand_concurrent_calls_in_one_process(rig: CallRig) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:  # both ends of 1,000 calls live in this process
        if hard != resource.RLIM_INFINITY and hard < 2200:
            pytest.skip(f"needs 2,200 file descriptors; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))

    async def script(ch: Channel) -> str:
        return await ch.play(["welcome"])

    server, outcomes = await rig.server(script)

    async def one_call() -> None:
        peer = await FakeAsterisk.call(server.port)
        await peer.started()
        await peer.expect('STREAM FILE "sac/pt_BR/welcome" "0123456789*#"', "200 result=50 endpos=10")
        await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
        await peer.closed_by_ivr()

    await asyncio.wait_for(asyncio.gather(*(one_call() for _ in range(1000))), 60)
    assert [outcomes.get_nowait() for _ in range(1000)] == ["2"] * 1000


async def _serve_in_background(settings: Settings, handler, **kw) -> tuple[asyncio.Task[int], AgiServer]:  # type: ignore[no-untyped-def]
    started: asyncio.Future[AgiServer] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(handler, settings, admission=OPEN, host="127.0.0.1", port=0, started=started.set_result, **kw)
    )
    return task, await asyncio.wait_for(started, WAIT_S)


async def test_sigterm_stops_accepting_and_lets_the_call_in_progress_finish(tmp_path: Path) -> None:
    finished = asyncio.Event()

    async def handler(ch: Channel, flow: str) -> None:
        await ch.play(["goodbye"])
        finished.set()

    task, server = await _serve_in_background(settings_for_tests(tmp_path), handler)
    port = server.port
    peer = await FakeAsterisk.call(port)
    await peer.started()
    await peer.command()  # the call is now in the middle of STREAM FILE
    os.kill(os.getpid(), signal.SIGTERM)
    async with asyncio.timeout(WAIT_S):
        while True:  # new calls are refused once the listener is closed
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                break
            w.close()
    assert not task.done()
    await peer.send("200 result=0 endpos=16000")
    await peer.expect('SET VARIABLE "IVR_DONE" "1"', "200 result=1")
    assert await asyncio.wait_for(task, WAIT_S) == 0  # drained: nothing cut
    assert finished.is_set()


async def test_drain_is_bounded_and_cuts_calls_that_outlive_it(tmp_path: Path) -> None:
    async def handler(ch: Channel, flow: str) -> None:
        await ch.play(["long_hold_music"])

    settings = settings_for_tests(tmp_path, drain_timeout_s=0.3, command_timeout_s=30)
    task, server = await _serve_in_background(settings, handler)
    peer = await FakeAsterisk.call(server.port)
    await peer.started()
    await peer.command()
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, WAIT_S) == 1
    assert await peer.closed_by_ivr()  # Asterisk continues the dialplan: the fallback queue


async def test_sighup_calls_on_reload(tmp_path: Path) -> None:
    reloaded = asyncio.Event()

    async def handler(ch: Channel, flow: str) -> None:
        raise AssertionError("no call in this test")

    task, _ = await _serve_in_background(settings_for_tests(tmp_path), handler, on_reload=reloaded.set)
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.wait_for(reloaded.wait(), WAIT_S)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, WAIT_S) == 0


async def test_ivr_serve_writes_the_pid_file_while_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    async def fake_serve(settings: Settings) -> int:
        pid_file = settings.var_dir / "ivr-serve.pid"
        seen.update(pid=pid_file.read_text().strip(), port=settings.agi.port, host=settings.agi.host)
        return 0

    monkeypatch.setitem(sys.modules, "ivr.app", types.SimpleNamespace(serve=fake_serve))
    import ivr

    monkeypatch.setattr(ivr, "app", sys.modules["ivr.app"], raising=False)
    monkeypatch.setenv("IVR_VAR_DIR", str(tmp_path))
    from ivr.config import settings

    settings.cache_clear()
    try:
        status = await cli._serve(
            argparse.Namespace(host="127.0.0.1", port=14574, workers=1, worker=None, supervisor=None, verbose=False)
        )
    finally:
        settings.cache_clear()
    assert status == 0
    assert seen == {"pid": str(os.getpid()), "port": 14574, "host": "127.0.0.1"}
    assert not (tmp_path / "ivr-serve.pid").exists()
