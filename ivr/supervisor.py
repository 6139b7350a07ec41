"""``ivr serve --workers N``: N worker processes on one FastAGI port, and the supervisor over them.

Each worker is a whole `ivr.app.serve` (its own event loop, store connections, AMI connection and live
model), started as ``ivr serve --worker <index>`` on the port the supervisor reserved. Every worker
listens on it with SO_REUSEPORT, and the kernel spreads the connections among them. The supervisor:

* migrates the store, publishes the flows on a first start and marks lost the calls a crash left open, once,
  before any worker starts (N workers doing it at once would race);
* holds the pid file that `ivr flow publish` signals: SIGHUP is forwarded to every worker (each reloads);
  SIGTERM or SIGINT is forwarded too, every worker drains its calls, and the supervisor exits 0 once all
  have exited 0 (1 otherwise);
* replaces a worker that dies, after a pause that doubles each time (`RESTART_PAUSES_S`); a worker that
  dies more than `MAX_RESTARTS` times within `RESTART_WINDOW_S` has a cause a restart does not fix, so
  the supervisor stops the others and exits 1;
* answers `ivr live` and the console on ``live.sock`` with every worker's calls (`MergedSnapshots` over
  each worker's ``live-<index>.sock``).

A worker dies with its supervisor (``PR_SET_PDEATHSIG``): a supervisor killed leaves no worker holding
calls that Asterisk's fallback queue should take.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections import deque

from ivr.ami.live import MergedSnapshots, follow_worker, serve_snapshots
from ivr.app import Worker, close_lost_calls, live_socket, served_library
from ivr.clock import system_clock
from ivr.config import Settings
from ivr.store.db import open_store, private_directory
from ivr.store.migrate import upgrade

log = logging.getLogger(__name__)

#: Pauses before restarting a worker that died: the first, doubling up to the last.
RESTART_PAUSES_S = (0.5, 10.0)
#: More restarts than this within the window and the supervisor gives up (exits 1).
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
#: A worker still running this long after SIGTERM and its drain bound is killed.
STOP_MARGIN_S = 15.0
_PR_SET_PDEATHSIG = 1


def die_with_supervisor(supervisor: int) -> None:
    """In a worker: be killed when the supervisor dies (Linux), or exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("worker: cannot ask to die with the supervisor (errno %d)", ctypes.get_errno())
    if os.getppid() != supervisor:  # it died before the request took effect
        raise SystemExit(f"ivr serve worker: the supervisor (pid {supervisor}) is gone")


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to host:port with SO_REUSEPORT: it turns port 0 into a real port the
    workers share, and keeps the port the supervisor's while workers restart. The kernel hands
    connections only to the listening sockets (the workers'). Raises OSError when another server has the
    port: SO_REUSEPORT alone would let a second `ivr serve` of this user share it, and take half the calls."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:  # without SO_REUSEPORT: refused while anyone listens
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        address = probe.getsockname()
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


class Supervisor:
    def __init__(self, settings: Settings, workers: int, *, verbose: bool = False) -> None:
        self._settings = settings
        self._count = workers
        self._verbose = verbose
        self._port = 0
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._restarts: deque[float] = deque()  # when each recent restart happened (monotonic)
        self._stopping = asyncio.Event()
        self._failed = False

    async def run(self) -> int:
        settings = self._settings
        await _prepare(settings)
        reserved = reserve_port(settings.agi.host, settings.agi.port)
        self._port = reserved.getsockname()[1]
        merged = MergedSnapshots(system_clock)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        followers = [
            asyncio.create_task(follow_worker(merged, n, live_socket(settings, Worker(n, self._count))))
            for n in range(self._count)
        ]
        try:
            async with serve_snapshots(live_socket(settings), merged):
                log.info(
                    "FastAGI on %s:%d: %d workers (supervisor pid %d)",
                    settings.agi.host, self._port, self._count, os.getpid(),
                )  # fmt: skip
                keepers = [asyncio.create_task(self._keep(n)) for n in range(self._count)]
                await self._stopping.wait()
                log.info("supervisor: stopping %d worker(s)", len(self._processes))
                statuses = await asyncio.gather(*keepers)  # each tells its worker to drain, and waits
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            reserved.close()
        if self._failed:
            return 1
        return 0 if all(status == 0 for status in statuses) else 1

    def _reload(self) -> None:
        """SIGHUP: every worker running reloads (one restarting loads the current release as it starts)."""
        log.info("SIGHUP: telling %d worker(s) to reload", len(self._processes))
        for process in self._processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGHUP)

    async def _keep(self, index: int) -> int:
        """Run worker `index` until the supervisor stops, restarting it when it dies; its last exit status."""
        pause = RESTART_PAUSES_S[0]
        while True:  # bounded by MAX_RESTARTS in RESTART_WINDOW_S, or by the supervisor stopping
            process = await self._start(index)
            status = await self._wait(process)
            if self._stopping.is_set():
                return status
            now = time.monotonic()
            self._restarts.append(now)
            while self._restarts and self._restarts[0] < now - RESTART_WINDOW_S:
                self._restarts.popleft()
            if len(self._restarts) > MAX_RESTARTS:
                log.critical(
                    "supervisor: workers died %d times within %.0f s (worker %d: status %s); stopping",
                    len(self._restarts), RESTART_WINDOW_S, index, status,
                )  # fmt: skip
                self._failed = True
                self._stopping.set()
                return status
            log.error("supervisor: worker %d (pid %d) exited with status %s; restarting in %.1f s",
                      index, process.pid, status, pause)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            if self._stopping.is_set():
                return status
            pause = min(pause * 2, RESTART_PAUSES_S[1])

    async def _start(self, index: int) -> asyncio.subprocess.Process:
        agi = self._settings.agi
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.cli", *(["-v"] if self._verbose else []), "serve",
            "--host", agi.host, "--port", str(self._port), "--workers", str(self._count),
            "--worker", str(index), "--supervisor", str(os.getpid()),
        )  # fmt: skip
        self._processes[index] = process
        log.info("supervisor: worker %d started (pid %d)", index, process.pid)
        return process

    async def _wait(self, process: asyncio.subprocess.Process) -> int:
        """The worker's exit status. Once the supervisor stops, the worker is told (SIGTERM: it drains) and,
        past its drain bound, killed."""
        waiting = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                process.send_signal(signal.SIGTERM)
                bound = self._settings.agi.drain_timeout_s + STOP_MARGIN_S
                try:
                    await asyncio.wait_for(asyncio.shield(waiting), bound)
                except TimeoutError:
                    log.error("supervisor: worker pid %d running %.0f s after SIGTERM: killed", process.pid, bound)
                    process.kill()
                status = await waiting
                # Killed by that SIGTERM before its handler was in place: it was still starting, so it had
                # not listened and held no call. Nothing was cut.
                return 0 if status == -signal.SIGTERM else status
            return await waiting
        finally:
            stopping.cancel()


async def _prepare(settings: Settings) -> None:
    """What N workers must not race to do, or need done once: migrate the store, publish the flows on a
    first start (and refuse to start on flows that fail their checks), mark lost the calls a crash left open."""
    private_directory(settings.var_dir)
    store = open_store(settings)
    try:
        await upgrade(store)
    finally:
        await store.aclose()
    served_library(settings)
    await close_lost_calls(settings, clock=system_clock)

