"""FastAGI load: N concurrent calls through ``ivr serve``, beside the AGI wire alone and a raw-asyncio floor.

The load generator plays Asterisk's side over loopback (bench/asterisk_side.py): for each call it sends
the ``agi_*`` block, then answers every command the way res_agi answers a real call, as a known caller
who asks for a ticket's status, keys its number, then asks for a person and talks to an agent. Every
call is held at ``EXEC Queue`` (the agent talking) until all N calls have reached it, so N calls are
truly in progress at once; the server process's RSS is read then.

Four servers take the same load, each in its own process (so its RSS is its own), all on the event loop
``ivr serve`` runs on (so the rows compare code, not loops):

* ``ivr``: the product. ``python -m ivr.cli serve`` over a demo-seeded SQLite store in a temporary
  directory: it publishes ``flows/`` (with their checks) on first start, allocates each call's protocol
  in the store, walks the sac flow through the engine, runs the store's lookups and writes node visits
  and call rows through the event buffer. A warm-up call with the fewest commands is recorded (a
  worker's first call, on cold caches, also asks Asterisk whether its prompt sequences played, which
  its later calls need not): the floor and the wire replay that transcript.
* ``wire``: ``ivr.agi.wire`` alone replaying the recorded commands (quoting, answer parsing, timeouts,
  out-of-band HANGUP): no engine, no store. The gap between it and ``ivr`` is the engine and the store.
* ``panoramisk``: panoramisk 1.4's FastAGI server (``panoramisk.fast_agi.Application``), the library a
  user would otherwise pick, replaying the same commands with ``Request.send_command``.
* ``floor``: the least an asyncio AGI responder can do: write the recorded lines, read the answers'
  lines. No parsing, no timeouts, no safety.

Then, on one more ``ivr serve``, the IVR's part of "the caller lands in the fallback queue": how long
after a failure, with N calls failing at once, the FastAGI socket closes without ``IVR_DONE`` (Asterisk
then continues the dialplan into the fallback queue; tests/e2e measures that part with a real Asterisk).

Run from the repo root:  .venv/bin/python bench/agi_load.py [--calls 100 1000] [--rounds 3]  (see bench/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asterisk_side import (
    AGI_KEY,
    MAIN_MENU_MISSING,
    Caller,
    Script,
    header,
    plays,
    split_command,
    ticket_status_then_agent,
)
from process_cpu import process_cpu_s

from ivr.cli import loop_factory
from ivr.config import HoldSettings, Settings

REPO = Path(__file__).resolve().parent.parent
#: Every run is bounded: a wedged server fails the bench instead of hanging it.
RUN_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
#: No call of the script sends more commands than this; more means the flow loops.
MAX_COMMANDS = 400
#: `ivr serve` runs on the default settings (the bench passes no IVR_* variable but its own directories):
#: the fallback range's first sequence number, and what the IVR plays when an operation is slow.
FALLBACK_FIRST: int = Settings.model_fields["protocol_fallback_range"].default[0]
HOLD_PROMPT = HoldSettings().prompt
#: A caller waiting longer than this for the protocol is counted (the goal: none).
SLOW_ALLOCATION_S = 2.0
#: The bench's copy of the flows (taken at its start), which every `ivr serve` run publishes.
FLOWS = "flows"
#: A recorded call: each command line with the answer lines Asterisk's side wrote back.
Transcript = list[tuple[str, list[str]]]


# ---------------------------------------------------------------- the servers


class Server(ABC):
    """A server under load in its own process."""

    name = ""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        """The server's processes: itself and its children (``ivr serve --workers``' workers)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *map(int, children)]

    @abstractmethod
    async def start(self) -> None:
        """Start the process; `port` is where it listens once this returns."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the process and wait for it."""


class ReplayServer(Server):
    """The floor, the wire or panoramisk (this script's ``--serve`` child), replaying a recorded transcript."""

    def __init__(self, name: str, transcript: Path, calls: int) -> None:
        super().__init__()
        self.name = name
        self._transcript = transcript
        self._calls = calls
        self.commands = len(json.loads(transcript.read_text()))

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.name, "--transcript", str(self._transcript),
            "--calls", str(self._calls), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.port = int(await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT_S))

    async def stop(self) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.close()  # the child serves until its stdin closes
        await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)


class IvrServe(Server):
    """``ivr serve`` over a copy of the demo-seeded store, in its own temporary directory."""

    name = "ivr"
    _LISTENING = re.compile(r"FastAGI listening on [^ ]+:(\d+)")

    def __init__(self, directory: Path, template: Path, workers: int = 1) -> None:
        super().__init__()
        self.workers = workers
        self.directory = directory
        self.database = directory / "ivr.sqlite3"
        directory.mkdir(parents=True)
        shutil.copy(template, self.database)
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.cli", "serve", "--host", "127.0.0.1", "--port", "0",
            "--workers", str(self.workers),
            cwd=REPO, env=_ivr_env(self.directory, self.database), stderr=subprocess.PIPE,
        )  # fmt: skip
        listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read_log(listening))
        self.port = await asyncio.wait_for(listening, START_TIMEOUT_S)

    async def stop(self) -> None:
        """SIGTERM: the server drains its calls and flushes the event buffer to the store."""
        assert self.process is not None and self._reader is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        await self._reader
        if status not in (0, -signal.SIGKILL):
            raise RuntimeError(f"ivr serve exited with status {status}:\n" + "\n".join(self.log[-20:]))

    def problems(self) -> list[str]:
        """The server's WARNING/ERROR lines, one per kind with its count (the time stamp dropped)."""
        kinds: dict[str, int] = {}
        for line in self.log:
            match = re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) (.*)", line)
            if match:
                kind = re.sub(r"\d+", "N", f"{match[1]} {match[2]}")[:140]
                kinds[kind] = kinds.get(kind, 0) + 1
        return [f"{count:>6} x {kind}" for kind, count in kinds.items()]

    async def _read_log(self, listening: asyncio.Future[int]) -> None:
        assert self.process is not None and self.process.stderr is not None
        listeners = 0
        async for raw in self.process.stderr:  # ends at EOF, when the server exits
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            match = self._LISTENING.search(line)
            listeners += bool(match)
            if match and listeners == self.workers and not listening.done():  # every worker on the port
                listening.set_result(int(match[1]))
        if not listening.done():
            listening.set_exception(RuntimeError("ivr serve exited before listening:\n" + "\n".join(self.log[-20:])))


def _ivr_env(directory: Path, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}  # the bench's settings only
    env.update(
        IVR_VAR_DIR=str(directory),
        IVR_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        IVR_FLOWS_DIR=str(directory.parent / FLOWS),
        IVR_METRICS__PORT="0",  # served as by default, on a free port (the default one may be another unit's)
        IVR_AGI__SECRET=AGI_KEY,
    )
    return env


def seed_template(directory: Path) -> Path:
    """A migrated store with the demo accounts (``ivr db seed``), copied for every ``ivr serve`` run."""
    database = directory / "template.sqlite3"
    subprocess.run(
        [sys.executable, "-m", "ivr.cli", "db", "seed"],
        cwd=REPO, env=_ivr_env(directory, database), check=True, capture_output=True, timeout=START_TIMEOUT_S,
    )  # fmt: skip
    with sqlite3.connect(database) as db:  # one file, no -wal beside it, so a plain copy is the whole store
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return database


# ---------------------------------------------------------------- the replaying children


async def serve_floor(transcript: Transcript, _calls: int) -> None:
    steps = [(f"{line}\n".encode(), len(answer)) for line, answer in transcript]

    async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        for line, answer_lines in steps:
            writer.write(line)
            for _ in range(answer_lines):
                await reader.readline()
        writer.close()

    server = await asyncio.start_server(call, "127.0.0.1", 0, backlog=4096)
    await _announce_and_wait(server.sockets[0].getsockname()[1])


async def serve_wire(transcript: Transcript, _calls: int) -> None:
    from ivr.agi.bounds import CommandBounds
    from ivr.agi.wire import MAX_LINE, AgiConnection, read_request
    from ivr.config import load_settings

    settings = load_settings()
    bounds = CommandBounds(settings)
    bounds.refresh()
    commands = [split_command(line) for line, _ in transcript]

    def timeout_s(command: str, args: list[str]) -> float:
        """As AgiChannel bounds them (the replayed answers come at once, so only the bound differs)."""
        if command == "EXEC":
            return bounds.conversation().seconds
        if command == "STREAM FILE":
            return bounds.prompt(args[0].rpartition(f"{settings.agi.sound_prefix}/")[2]).seconds
        return bounds.instant().seconds

    async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = AgiConnection(reader, writer, await read_request(reader, timeout=settings.agi.header_timeout_s))
        try:
            for command, args in commands:  # after_hangup: the recorded call reads variables after it
                await conn.execute(command, *args, timeout=timeout_s(command, args), after_hangup=True)
        finally:
            await conn.close()

    server = await asyncio.start_server(call, "127.0.0.1", 0, limit=MAX_LINE, backlog=4096)
    await _announce_and_wait(server.sockets[0].getsockname()[1])


async def serve_panoramisk(transcript: Transcript, calls: int) -> None:
    """panoramisk's FastAGI server as its documentation shows it: a route, `send_command` per line. It
    reads one line per command, so the out-of-band ``HANGUP`` after ``EXEC Queue`` is taken as the next
    command's answer (the replay goes on regardless: the same commands are sent). It routes by the whole
    request, which carries each call's linkedid (the shipped dialplan's): one route per call of the run."""
    from panoramisk.fast_agi import Application, Request

    lines = [line for line, _ in transcript]

    async def call(request: Request) -> None:
        for line in lines:
            await request.send_command(line)

    app = Application()
    for n in range(calls + 1):  # the warm-up call is number 0
        app.add_route(re.search(r"agi_network_script: (.*)", header(n))[1], call)  # type: ignore[index]
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=4096)
    await _announce_and_wait(server.sockets[0].getsockname()[1])


async def _announce_and_wait(port: int) -> None:
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


# ---------------------------------------------------------------- Asterisk's side (the parent)


class Hold:
    """Holds every call at the first command `matches` accepts until all N calls are there (or over)."""

    def __init__(self, calls: int, matches: Callable[[str], bool]) -> None:
        self.matches = matches
        self._left = calls
        self.all_here = asyncio.Event()
        self.released = asyncio.Event()

    async def arrive(self) -> None:
        self.passed()
        await self.released.wait()

    def passed(self) -> None:
        """A call arrived, or ended without coming here (it is checked afterwards)."""
        self._left -= 1
        if self._left == 0:
            self.all_here.set()


def at_queue(line: str) -> bool:
    return line.startswith('EXEC "Queue"')


def at_main_menu(line: str) -> bool:
    return plays(line, "main_menu")


@dataclass
class CallRecord:
    caller: Caller
    transcript: Transcript = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)  # answer written -> next command read
    allocation_s: float = 0.0  # ANSWER answered -> next command (the protocol is allocated in between)
    last_answer_at: float = 0.0
    closed_at: float = 0.0


async def one_call(port: int, caller: Caller, hold: Hold | None, start_after_s: float = 0.0) -> CallRecord:
    """Asterisk's side of one call, from the ``agi_*`` block until the IVR closes the socket."""
    record = CallRecord(caller)
    held = False
    previous = ""
    try:
        if start_after_s:
            await asyncio.sleep(start_after_s)  # the call's arrival time in a ramp
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except BaseException:
        if hold is not None:
            hold.passed()
        raise
    writer.write(header(caller.n).encode())
    record.last_answer_at = time.perf_counter()
    try:
        for _ in range(MAX_COMMANDS):
            try:
                data = await reader.readline()
            except ConnectionResetError:
                data = b""
            now = time.perf_counter()
            if not data.endswith(b"\n"):  # the server closed the call
                record.closed_at = now
                return record
            line = data.decode().rstrip("\n")
            record.latencies_s.append(now - record.last_answer_at)
            if previous == "ANSWER":
                record.allocation_s = now - record.last_answer_at
            if hold is not None and not held and hold.matches(line):
                held = True
                await hold.arrive()
            answer = caller.answer(line)
            record.transcript.append((line, answer))
            writer.write("".join(f"{a}\n" for a in answer).encode())
            record.last_answer_at = time.perf_counter()
            previous = line
        raise AssertionError(f"call {caller.n}: more than {MAX_COMMANDS} commands (does the flow loop?)")
    finally:
        writer.close()
        if hold is not None and not held:
            hold.passed()


async def run_calls(
    port: int, callers: Sequence[Caller], hold: Hold, when_held: Callable[[], None], ramp_s: float = 0.0
) -> list[CallRecord]:
    """The calls at once (or arriving evenly over `ramp_s`); `when_held` runs once every call is at the
    hold point, then they go on. A call that fails fails the run (the task group cancels the others)."""
    async with asyncio.timeout(RUN_TIMEOUT_S + ramp_s), asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(one_call(port, caller, hold, ramp_s * index / len(callers)))
            for index, caller in enumerate(callers)
        ]
        await hold.all_here.wait()
        when_held()
        hold.released.set()
    return [task.result() for task in tasks]


@dataclass
class Run:
    server: str
    calls: int
    records: list[CallRecord]
    elapsed_s: float
    rss_idle_kib: int
    rss_busy_kib: int
    cpu_s: float  # the server's CPU time during the run
    store: StoreFigures | None = None

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.elapsed_s

    @property
    def latencies_s(self) -> list[float]:
        return [s for r in self.records for s in r.latencies_s]

    @property
    def kib_per_call(self) -> float:
        return (self.rss_busy_kib - self.rss_idle_kib) / self.calls

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.calls

    def off_script(self, scripted: str) -> Counter[str]:
        """Paths (``IVR_PATH``, from where they leave the scripted one) of the calls that left it."""
        way = scripted.split(">")
        paths: Counter[str] = Counter()
        for r in self.records:
            path = r.caller.variables.get("IVR_PATH", "")
            if path != scripted:
                nodes = path.split(">")
                same = next(
                    (i for i, (a, b) in enumerate(zip(nodes, way, strict=False)) if a != b), min(len(nodes), len(way))
                )
                paths["...>" + ">".join(nodes[max(same - 1, 0) :])] += 1
        return paths

    def heard(self, prompt: str) -> int:
        """Calls that heard `prompt` (e.g. the hold prompt of a slow operation)."""
        return sum(
            any(plays(line, prompt) for line, _ in r.transcript)
            for r in self.records
        )


def pct_ms(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def warm_up(server: Server, script: Script) -> list[CallRecord]:
    """Calls before measuring (lazy imports, caches, the prompt files Asterisk has played), the recording
    last: the one with the fewest commands, a call as the measured ones are. Two per worker and one more,
    so that some worker has taken two (the kernel spreads connections over the workers as it likes)."""
    calls = 2 * getattr(server, "workers", 1) + 1
    records = [await _warm_up_call(server, script) for _ in range(calls)]
    check_completed(records)
    return sorted(records, key=lambda r: len(r.transcript), reverse=True)


async def _warm_up_call(server: Server, script: Script) -> CallRecord:
    record = await asyncio.wait_for(one_call(server.port, Caller(0, script), None), RUN_TIMEOUT_S)
    if record.caller.keys_left:
        raise AssertionError(
            f"the warm-up call left keys {record.caller.keys_left!r} of its script {script.keys!r} (read off the "
            f"flows): it went {record.caller.variables.get('IVR_PATH', '(no IVR_PATH)')}; the demo data or the "
            "nodes between the menus no longer take a known caller that way (bench/asterisk_side.py)"
        )
    return record


def check_completed(records: Sequence[CallRecord]) -> None:
    """Every call reached a person in the technical queue (by the scripted way or another one)."""
    for r in records:
        if r.caller.queued != "technical":
            lines = "\n".join(f"  {line} -> {' / '.join(a)}" for line, a in r.transcript[-8:])
            raise AssertionError(
                f"call {r.caller.n} never reached the technical queue (keys left {r.caller.keys_left!r}); "
                f"its last commands:\n{lines}"
            )


async def load(server: Server, script: Script, calls: int, ramp_s: float) -> Run:
    """N calls at once (or over `ramp_s`); all held at the queue while the server's RSS is read."""
    pids = server.pids
    idle = sum(map(rss_kib, pids))
    busy: list[int] = []
    cpu_before = sum(map(process_cpu_s, pids))
    started = time.perf_counter()
    callers = [Caller(n, script) for n in range(1, calls + 1)]
    records = await run_calls(
        server.port, callers, Hold(calls, at_queue), lambda: busy.append(sum(map(rss_kib, pids))), ramp_s
    )
    elapsed = time.perf_counter() - started
    cpu = sum(map(process_cpu_s, pids)) - cpu_before
    check_completed(records)
    if isinstance(server, ReplayServer):
        cut = [r.caller.n for r in records if len(r.transcript) != server.commands]
        if cut:
            raise AssertionError(f"{server.name}: {len(cut)} call(s) did not replay all {server.commands} commands")
    return Run(server.name, calls, records, elapsed, idle, busy[0], cpu)


# ---------------------------------------------------------------- the store after a run


@dataclass
class StoreFigures:
    calls: int  # calls the run made (the warm-up included)
    call_rows: int
    ended_rows: int  # call rows with their outcome (the end record written)
    visits_expected: int  # nodes the calls walked (their IVR_PATH)
    visit_rows: int
    from_fallback: int  # calls whose protocol the store did not give in time
    problems: list[str]

    @property
    def records_expected(self) -> int:
        return self.visits_expected + 2 * self.calls  # a call's start and end records

    @property
    def records_lost(self) -> int:
        """At least this many: a call row whose start record was lost still counts as written."""
        return self.records_expected - self.visit_rows - self.call_rows - self.ended_rows


def store_figures(server: IvrServe, records: Sequence[CallRecord]) -> StoreFigures:
    """What reached the store, read once `ivr serve` has drained and flushed its event buffer."""
    with sqlite3.connect(server.database) as db:
        call_rows, ended = db.execute("SELECT count(*), count(NULLIF(outcome, '')) FROM calls").fetchone()
        (visits,) = db.execute("SELECT count(*) FROM node_visits").fetchone()
    return StoreFigures(
        calls=len(records),
        call_rows=call_rows,
        ended_rows=ended,
        visits_expected=sum(len(r.caller.variables["IVR_PATH"].split(">")) for r in records),
        visit_rows=visits,
        from_fallback=sum(int(r.caller.variables["IVR_PROTOCOL"][4:11]) >= FALLBACK_FIRST for r in records),
        problems=server.problems(),
    )


async def measure(server: Server, script: Script, calls: int, ramp_s: float) -> tuple[Run, CallRecord]:
    """Start the server, warm it up (its last warm-up call is the recording), load it, stop it."""
    await server.start()
    try:
        warm_ups = await warm_up(server, script)
        run = await load(server, script, calls, ramp_s)
    finally:
        await server.stop()
    if isinstance(server, IvrServe):
        run.store = store_figures(server, [*warm_ups, *run.records])
    return run, warm_ups[-1]


# ---------------------------------------------------------------- the fallback queue


@dataclass
class Failover:
    what: str
    calls: int
    closed_after_s: list[float]  # failure -> FastAGI socket closed, per call
    done_by_ivr: int  # calls that got IVR_DONE anyway (must be 0: they would skip the fallback queue)


async def failover_missing_prompt(server: IvrServe, calls: int) -> Failover:
    """The main menu's sound file is missing on the Asterisk host: N calls get ``result=-1`` at once."""
    callers = [Caller(n, MAIN_MENU_MISSING) for n in range(1, calls + 1)]
    records = await run_calls(server.port, callers, Hold(calls, at_main_menu), lambda: None)
    return Failover(
        "main menu sound file missing (result=-1, no HANGUP) -> socket closed",
        calls,
        [r.closed_at - r.last_answer_at for r in records],
        sum(r.caller.done_by_ivr for r in records),
    )


async def failover_killed(server: IvrServe, script: Script, calls: int) -> Failover:
    """``ivr serve`` is killed (SIGKILL) while N calls are at the main menu."""
    process = server.process
    assert process is not None
    killed_at: list[float] = []

    def kill() -> None:
        process.kill()
        killed_at.append(time.perf_counter())

    callers = [Caller(n, script) for n in range(1, calls + 1)]
    records = await run_calls(server.port, callers, Hold(calls, at_main_menu), kill)
    # Its exit is asyncio's to reap: a SIGTERM sent before asyncio has seen it (`stop`) polls the process, reaps
    # it first, and asyncio then reports an unknown child's status 255 (with few calls the sockets close at once).
    await process.wait()
    return Failover(
        "ivr serve killed (SIGKILL) -> socket closed",
        calls,
        [r.closed_at - killed_at[0] for r in records],
        sum(r.caller.done_by_ivr for r in records),
    )


async def measure_failovers(
    directory: Path, template: Path, script: Script, calls: int, workers: int
) -> list[Failover]:
    """Both failures on one ``ivr serve``: the missing prompt first (the server survives it), then the kill
    (of the supervisor, with workers: they die with it)."""
    server = IvrServe(directory / "failover", template, workers)
    await server.start()
    try:
        await warm_up(server, script)
        return [await failover_missing_prompt(server, calls), await failover_killed(server, script, calls)]
    finally:
        await server.stop()


# ---------------------------------------------------------------- report


def report(
    runs: Sequence[Run], failovers: Sequence[Failover], recording: CallRecord, rounds: int, ramp_s: float, workers: int
) -> None:
    transcript = recording.transcript
    scripted = recording.caller.variables["IVR_PATH"]
    keys = ", ".join(f"{keys} at {prompt}" for prompt, keys in recording.caller.script.keys)
    print(
        f"call: known caller, ticket status, then a person who answers in the technical queue ({keys}): "
        f"{len(transcript)} AGI commands, {len(scripted.split('>'))} node visits"
    )
    arrivals = f"arriving evenly over {ramp_s:g} s" if ramp_s else "arriving at once"
    print(
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, loopback; N calls {arrivals}; "
        f"median of {rounds} round(s) by calls/s; ivr serve --workers {workers} (CPU and memory: all its processes)"
    )
    print(
        f"{'server':<11}{'calls':>7}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'alloc p50/p99 ms':>18}"
        f"{'KiB/call':>10}{'CPU ms/call':>13}"
    )
    for r in runs:
        allocations = [c.allocation_s for c in r.records]
        alloc = f"{pct_ms(allocations, 0.5):.1f}/{pct_ms(allocations, 0.99):.1f}" if r.server == "ivr" else "-"
        print(
            f"{r.server:<11}{r.calls:>7}{r.calls_per_s:>9.0f}{pct_ms(r.latencies_s, 0.5):>9.2f}"
            f"{pct_ms(r.latencies_s, 0.99):>9.2f}{alloc:>18}{r.kib_per_call:>10.1f}{r.cpu_ms_per_call:>13.2f}"
        )
    for calls in sorted({r.calls for r in runs}):
        floor = next(r for r in runs if r.server == "floor" and r.calls == calls)
        for other in (r for r in runs if r.calls == calls and r.server != "floor"):
            print(
                f"{other.server}/floor at {calls}: calls/s x{other.calls_per_s / floor.calls_per_s:.2f}, "
                f"p50 x{pct_ms(other.latencies_s, 0.5) / pct_ms(floor.latencies_s, 0.5):.1f}, "
                f"p99 x{pct_ms(other.latencies_s, 0.99) / pct_ms(floor.latencies_s, 0.99):.1f}, "
                f"memory x{other.kib_per_call / max(floor.kib_per_call, 0.1):.1f}, "
                f"CPU x{other.cpu_ms_per_call / max(floor.cpu_ms_per_call, 0.01):.1f}"
            )
    for r in runs:
        if r.store is None:
            continue
        s = r.store
        print(
            f"store at {r.calls} (SQLite, {s.calls} calls with the warm-ups): call rows {s.call_rows} "
            f"({s.ended_rows} ended), node visits {s.visit_rows}/{s.visits_expected}, "
            f"records lost >= {s.records_lost}/{s.records_expected}; "
            f"protocols from the fallback range {s.from_fallback}"
        )
        for line in s.problems:
            print(f"  server log: {line}")
        slow = sum(c.allocation_s > SLOW_ALLOCATION_S for c in r.records)
        print(f"  {slow} call(s) waited over {SLOW_ALLOCATION_S:g} s for their protocol")
        off = r.off_script(scripted)
        print(f"  {sum(off.values())} call(s) left the scripted path; {r.heard(HOLD_PROMPT)} heard the hold prompt")
        for path, count in off.most_common(5):
            print(f"  {count:>6} x {path}")
    for f in failovers:
        print(
            f"fallback queue, IVR's part, {f.calls} calls: {f.what}: p50 {pct_ms(f.closed_after_s, 0.5):.0f} ms, "
            f"p99 {pct_ms(f.closed_after_s, 0.99):.0f} ms, max {max(f.closed_after_s) * 1000:.0f} ms; "
            f"IVR_DONE set on {f.done_by_ivr}"
        )
    print("(latency = Asterisk's answer written -> next command read; alloc = ANSWER answered -> next command,")
    print(" the protocol allocation the call waits for; KiB/call = (RSS with N calls at the queue - idle RSS) / N;")
    print(" CPU ms/call = the server's user + system CPU time during the run / N, read to the nanosecond)")


async def main(
    calls: Sequence[int], rounds: int, ramp_s: float, flows: Path, failover_calls: int, workers: int
) -> None:
    _check_descriptors(max(*calls, failover_calls))
    started, load_before = time.monotonic(), os.getloadavg()[0]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="sac-ivr-bench-") as tmp:
        directory = Path(tmp)
        shutil.copytree(flows, directory / FLOWS)  # one release for the whole bench, even if flows/ is edited meanwhile
        template = seed_template(directory)
        script = ticket_status_then_agent(directory / FLOWS / "sac.yaml")
        transcript_file = directory / "transcript.json"
        for n in calls:
            by_server: dict[str, list[Run]] = {"floor": [], "wire": [], "panoramisk": [], "ivr": []}
            for index in range(rounds):  # the three servers in turn, so drift on the machine hits all alike
                ivr = IvrServe(directory / f"ivr-{n}-{index}", template, workers)
                run, recording = await measure(ivr, script, n, ramp_s)
                by_server["ivr"].append(run)
                transcript_file.write_text(json.dumps(recording.transcript))
                for name in ("floor", "wire", "panoramisk"):
                    replay = ReplayServer(name, transcript_file, n)
                    by_server[name].append((await measure(replay, script, n, ramp_s))[0])
            for done in by_server.values():
                runs.append(sorted(done, key=lambda r: r.calls_per_s)[len(done) // 2])
        failovers = await measure_failovers(directory, template, script, failover_calls, workers)
    report(runs, failovers, recording, rounds, ramp_s, workers)
    print(
        f"bench took {time.monotonic() - started:.0f} s; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after (other work on the machine moves the figures)"
    )


def _check_descriptors(calls: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = calls + 256  # one socket per call in the generator, and in the server
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"bench: {calls} calls need {needed} file descriptors; `ulimit -n` allows {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000], help="concurrent calls per run")
    parser.add_argument("--rounds", type=int, default=1, help="runs per row; the median is shown")
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="seconds over which the N calls arrive (default: all at once)"
    )
    parser.add_argument(
        "--failover-calls",
        type=int,
        help="calls failing at once in the fallback-queue runs (default: the smallest --calls)",
    )
    parser.add_argument(
        "--flows", type=Path, default=REPO / "flows", help="the flows directory to serve (default: flows/)"
    )
    parser.add_argument("--workers", type=int, default=1, help="ivr serve --workers (default: 1, one process)")
    parser.add_argument("--serve", choices=("floor", "wire", "panoramisk"), help=argparse.SUPPRESS)  # a child
    parser.add_argument("--transcript", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        recorded = [(line, answer) for line, answer in json.loads(args.transcript.read_text())]
        serve = {"floor": serve_floor, "wire": serve_wire, "panoramisk": serve_panoramisk}[args.serve]
        with asyncio.Runner(loop_factory=loop_factory("serve")) as runner:  # the loop `ivr serve` runs on
            runner.run(serve(recorded, args.calls[0]))
    else:
        failover_calls = args.failover_calls or min(args.calls)
        asyncio.run(main(args.calls, args.rounds, args.ramp, args.flows, failover_calls, args.workers))
