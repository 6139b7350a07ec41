"""The supervisor of `ivr serve --workers`: it gives up (exit status 1) on workers that keep dying, and will not
share its port with a server already listening there."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from ivr import supervisor
from ivr.config import Settings


async def test_workers_that_keep_dying_stop_the_supervisor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async def prepared(_settings: Settings) -> None:
        return None

    async def dying(self: supervisor.Supervisor, index: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(3)")
        self._processes[index] = process
        return process

    monkeypatch.setattr(supervisor, "RESTART_PAUSES_S", (0.01, 0.05))
    monkeypatch.setattr(supervisor, "_prepare", prepared)
    monkeypatch.setattr(supervisor.Supervisor, "_start", dying)
    settings = Settings(var_dir=tmp_path)
    settings = settings.model_copy(update={"agi": settings.agi.model_copy(update={"host": "127.0.0.1", "port": 0})})
    async with asyncio.timeout(30):
        assert await supervisor.Supervisor(settings, 2).run() == 1


def test_the_port_is_refused_while_another_server_listens_on_it() -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as another supervisor's worker listens
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError):
            supervisor.reserve_port("127.0.0.1", other.getsockname()[1]).close()
    with supervisor.reserve_port("127.0.0.1", 0) as reserved, socket.socket() as worker:
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(reserved.getsockname())  # a worker joins the reserved port


@pytest.mark.parametrize(("argv", "uvloop_expected"), [(["serve", "--workers", "1"], True), (["live"], False)])
def test_ivr_serve_answers_its_calls_on_uvloop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], uvloop_expected: bool
) -> None:
    """The call path runs on libuv's loop (its transports in C cost the IVR less CPU per call); the other
    commands keep asyncio's own."""
    import uvloop

    from ivr import app, cli
    from ivr.cli import live, serve
    from ivr.config import settings

    loops: list[asyncio.AbstractEventLoop] = []

    async def record_loop(*_args: object) -> int:
        loops.append(asyncio.get_running_loop())
        return 0

    monkeypatch.setenv("IVR_VAR_DIR", str(tmp_path))
    settings.cache_clear()
    monkeypatch.setattr(app, "serve", record_loop)
    monkeypatch.setattr(serve, "tune_gc", lambda: None)  # not this test process's collector
    monkeypatch.setattr(live, "_live", record_loop)
    try:
        assert cli.main(argv) == 0
    finally:
        settings.cache_clear()
    assert len(loops) == 1
    assert isinstance(loops[0], uvloop.Loop) is uvloop_expected
