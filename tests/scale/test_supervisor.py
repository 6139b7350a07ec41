"""The supervisor of `ivr serve --workers` gives up, exit status 1, on workers that keep dying."""

from __future__ import annotations

import asyncio
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
