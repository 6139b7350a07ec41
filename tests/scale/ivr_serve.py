"""`ivr serve` as a subprocess over a given database, with a var directory of its own (one unit).

It listens on a free loopback port (``--port 0``), read from its log. `stop()` sends SIGTERM (the
server drains its calls and flushes its event buffer to the store) and kills it if it hangs.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from bench.asterisk_side import AGI_KEY

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"FastAGI listening on [^ ]+:(\d+)")


def ivr_environment(database_url: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}  # only the test's settings
    env.update(
        IVR_DATABASE_URL=database_url,
        IVR_VAR_DIR=str(var_dir),
        IVR_AGI__DRAIN_TIMEOUT_S="5",
        IVR_STORE__BUSY_TIMEOUT_S="30",  # units migrating one SQLite file wait their turn, on a loaded machine too
        IVR_AGI__SECRET=AGI_KEY,  # what the scripted Asterisk side sends (bench/asterisk_side.py)
        # The test is about the store's numbers: a slow machine must not send calls to the fallback range.
        IVR_STORE__ALLOCATE_TIMEOUT_S="15",
        IVR_METRICS__PORT="0",  # two units on one host cannot both serve /metrics on the default port
    )
    return env


async def ivr_command(*args: str, database_url: str, var_dir: Path) -> str:
    """Run ``ivr <args>`` to completion; its output, or AssertionError with it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.cli", *args, cwd=REPO, env=ivr_environment(database_url, var_dir),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"ivr {' '.join(args)} exited with {process.returncode}:\n{text}"
    return text


class IvrServe:
    def __init__(self, database_url: str, var_dir: Path, *, workers: int = 1) -> None:
        self.database_url = database_url
        self.var_dir = var_dir
        self.workers = workers
        self.port = 0
        self.log: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new_line = asyncio.Condition()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def send_signal(self, sig: int) -> None:
        assert self._process is not None
        self._process.send_signal(sig)

    async def logged(self, pattern: str, count: int = 1, timeout_s: float = START_TIMEOUT_S) -> list[re.Match[str]]:
        """The first `count` matches of `pattern` in the log, waiting for them (AssertionError after `timeout_s`)."""

        def found() -> list[re.Match[str]]:
            return [m for m in map(re.compile(pattern).search, self.log) if m]

        try:
            async with asyncio.timeout(timeout_s), self._new_line:
                await self._new_line.wait_for(lambda: len(found()) >= count)
        except TimeoutError:
            raise AssertionError(f"{count} x {pattern!r} not logged within {timeout_s:.0f} s:\n{self.tail()}") from None
        return found()[:count]

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.cli", "serve", "--host", "127.0.0.1", "--port", "0",
            "--workers", str(self.workers), cwd=REPO, env=ivr_environment(self.database_url, self.var_dir),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_log(listening))
        self.port = await asyncio.wait_for(listening, START_TIMEOUT_S)

    async def stop(self) -> int:
        """SIGTERM, then the exit status (the server is killed, and this fails, if it ignores SIGTERM)."""
        if self._process is None:
            return 0
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            status = await asyncio.wait_for(self._process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise AssertionError(f"ivr serve ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s:\n{self.tail()}") from None
        finally:
            if self._reader is not None:
                await self._reader
        return status

    def problems(self) -> list[str]:
        """The server's ERROR and CRITICAL lines (a failed call, a store write refused)."""
        return [line for line in self.log if re.match(r"\S+ \S+ (ERROR|CRITICAL) ", line)]

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log[-lines:])

    async def _read_log(self, listening: asyncio.Future[int]) -> None:
        assert self._process is not None and self._process.stderr is not None
        async for raw in self._process.stderr:  # ends at EOF, when the server exits
            line = raw.decode(errors="replace").rstrip()
            async with self._new_line:
                self.log.append(line)
                self._new_line.notify_all()
            match = _LISTENING.search(line)
            if match and not listening.done():
                listening.set_result(int(match[1]))
        if not listening.done():
            listening.set_exception(AssertionError(f"ivr serve exited before listening:\n{self.tail()}"))
