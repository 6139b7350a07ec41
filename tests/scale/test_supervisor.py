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
