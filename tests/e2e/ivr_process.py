"""The real IVR (`ivr serve`) as a subprocess of the e2e tests: it can be stopped cleanly or killed.

It runs on a demo-seeded SQLite store and a var directory of its own (the flows are published there
on its first start), with the e2e Asterisk's FastAGI port and AMI secret. Its clock is a business-day
morning (libfaketime's `faketime`, the clock starting there and running normally), so the billing
and commercial teams are open whenever the suite runs, as a flow test's `at:` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from ivr.clock import system_clock
from ivr.config import Settings
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.seed import seed

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
LIVE_TIMEOUT_S = 10.0  # `ivr live`: a Python start and one read from the running unit
IVR = Path(sys.executable).with_name("ivr")


class IvrProcessError(RuntimeError):
    """The IVR did not start or stop; the message carries the tail of its output."""


def business_morning(timezone: str, now: datetime) -> datetime:
    """10:00 on the first weekday from `now`'s day that is no national holiday, in the IVR's timezone."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    for _ in range(10):  # bounded: never more than a long weekend plus a holiday or two
        if day.weekday() < 5 and day not in holidays.country_holidays("BR", years=day.year):
            return datetime.combine(day, clock_time(10, 0), zone)
        day += timedelta(days=1)
    raise AssertionError(f"no business day within ten days of {now:%Y-%m-%d}")


def _faketime() -> str:
    faketime = shutil.which("faketime")
    if faketime is None:
        raise IvrProcessError("faketime is not installed (apt-get install faketime)")
    return faketime


#: Where the `faketime` wrapper (libfaketime 0.9.10) keeps the shared memory and semaphore it makes for its
#: children, named by its own pid.
SHARED_MEMORY = Path("/dev/shm")


def forget_wrapper(pid: int) -> None:
    """Remove what the `faketime` wrapper of pid `pid` made. It removes them as it exits; killed, it leaves
    them, and a later wrapper given the same pid (pids wrap at 32,768; a test run starts thousands of
    processes) cannot start: "faketime: sem_open: File exists"."""
    for name in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
        (SHARED_MEMORY / name).unlink(missing_ok=True)


def _start_at(moment: datetime) -> str:
    """libfaketime's spec for a clock that starts at `moment` and runs on."""
    return "@" + moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S")


class IvrProcess:
    """`ivr serve` over a store and var directory in `directory`; `env` adds IVR_ settings (back-ends the
    test session fakes on loopback, say). A second unit shares the first one's ``database``."""

    def __init__(
        self,
        settings: Settings,
        directory: Path,
        env: Mapping[str, str] | None = None,
        database: Path | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.extra_env = dict(env or {})
        self.var_dir = directory / "var"
        self.database = database or directory / "ivr.sqlite3"
        self.output = directory / "ivr-serve.log"
        self.moment = business_morning(settings.timezone, system_clock())
        self._started = time.monotonic()  # when the faked clock last started at `moment`
        self._proc: subprocess.Popen[bytes] | None = None

    def seed(self) -> None:
        """Migrate and seed the store with the demo accounts, dated as of the IVR's clock."""

        async def run() -> None:
            store = Store(self.database_url)
            try:
                await upgrade(store)
                await seed(store, now=self.moment, timezone=self.settings.timezone)
            finally:
                await store.aclose()

        asyncio.run(run())

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}"

    @property
    def faketime(self) -> str:
        """libfaketime's "start at" spec: the clock starts at the business morning and runs on."""
        return _start_at(self.moment)

    def on_its_clock(self, *arguments: str) -> list[str]:
        """An `ivr` command line run on this unit's faked clock, from where it is now: a supervisor's command
        that reads the clock (`ivr announce end`) judges as the running IVR does, whatever the real hour."""
        return [_faketime(), "-f", _start_at(self.clock()), str(IVR), *arguments]

    def environment(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        env.update(
            TZ="UTC",  # the faked moment below is UTC; the IVR speaks in settings.timezone
            IVR_DATABASE_URL=self.database_url,
            IVR_VAR_DIR=str(self.var_dir),
            IVR_AGI__HOST=s.agi.host,
            IVR_AGI__PORT=str(s.agi.port),
            IVR_AGI__SECRET=s.agi.secret.get_secret_value(),
            IVR_AGI__DRAIN_TIMEOUT_S="3",
            IVR_AMI__PORT=str(s.ami.port),
            IVR_AMI__SECRET=s.ami.secret.get_secret_value(),
            IVR_ASTERISK__RECORDINGS_DIR_IN_ASTERISK=s.asterisk.recordings_dir_in_asterisk,  # the instance's own
            IVR_METRICS__PORT="0",  # a free port: units run side by side (two in a test, one per shard)
            IVR_STORE__EVENT_FLUSH_INTERVAL_S="0.2",  # rows reach the store sooner: shorter waits
        )
        env.update(self.extra_env)
        return env

    @property
    def pid(self) -> int | None:
        """The `ivr serve` process itself (the faketime wrapper is its parent)."""
        try:
            return int((self.var_dir / "ivr-serve.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def start(self) -> float:
        """Start `ivr serve` and return once it accepts FastAGI connections; returns the seconds it took."""
        faketime = _faketime()
        (self.var_dir / "ivr-serve.pid").unlink(missing_ok=True)
        started = self._started = time.monotonic()
        with self.output.open("ab") as out:
            self._proc = subprocess.Popen(
                [faketime, "-f", self.faketime, str(IVR), "serve"],
                env=self.environment(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the wrapper and the IVR go together
            )  # fmt: skip
        while time.monotonic() - started < START_TIMEOUT_S:
            if self._proc.poll() is not None:
                raise IvrProcessError(f"`ivr serve` exited with {self._proc.returncode}{self._tail()}")
            if self.pid is not None and self._accepts():
                return time.monotonic() - started
            time.sleep(0.05)
        self.kill()
        raise IvrProcessError(f"`ivr serve` did not accept FastAGI calls within {START_TIMEOUT_S:.0f} s{self._tail()}")

    async def live(self) -> dict[str, Any]:
        """What `ivr live` prints of this unit: the snapshot of its live model."""
        proc = await asyncio.create_subprocess_exec(
            str(IVR), "live", env=self.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), LIVE_TIMEOUT_S)
        if proc.returncode != 0:
            raise IvrProcessError(f"`ivr live` exited with {proc.returncode}: {err.decode(errors='replace')}")
        return dict(json.loads(out))

    def clock(self) -> datetime:
        """The IVR's faked clock as seen from here (to a second or so): what a peer checking its
        timestamps, such as a screen pop's receiver, compares them with."""
        return self.moment + timedelta(seconds=time.monotonic() - self._started)

    @property
    def agi_port(self) -> int:
        return int(self.extra_env.get("IVR_AGI__PORT", self.settings.agi.port))

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.settings.agi.host, self.agi_port), timeout=0.5):
                return True  # the IVR logs the empty connection and drops it
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would: the IVR and its wrapper, at once."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone
        self._proc.wait(timeout=STOP_TIMEOUT_S)
        forget_wrapper(self._proc.pid)
        self._proc = None

    def stop(self) -> int:
        """SIGTERM to the IVR (it drains its calls, bounded), then its exit status; killed if it hangs."""
        if self._proc is None:
            return 0
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            status = self._proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise IvrProcessError(f"`ivr serve` ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s{self._tail()}") from None
        self._proc = None
        return status

    def _tail(self, lines: int = 25) -> str:
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return f"\n--- last lines of {self.output} ---\n" + "\n".join(text.splitlines()[-lines:])
