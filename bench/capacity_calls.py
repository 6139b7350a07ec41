"""Capacity on real calls: a SIPp ramp through Asterisk 22 and ``ivr serve``, beside a dialplan-only IVR.

One private Asterisk instance on free loopback ports (the e2e harness's settings: tests/e2e/conftest.py)
and one ``ivr serve`` on a demo-seeded SQLite store (tests/e2e/ivr_process.py) take callers doing three
real DTMF journeys in equal shares: the status of a ticket, a failure ticket opened by an unknown caller
who keys a CNPJ, and a copy of last month's boleto (tests/e2e/scripts.py's keys, timed by a walk of the
same call against the built prompts' lengths, as the e2e tests time them). Each step offers a rate for
a while: one SIPp process per journey (``-r 1 -rp <period> -m <calls>``); the next step starts when
this one's offer period ends, so calls of consecutive steps overlap as real traffic does. After the
first step with a failed call no step starts.

A call failed if SIPp failed it (an unexpected message, a time-out), or its record does not show it
going the journey's way: for the IVR the store (it passed the journey's own node and ended at
``goodbye``, outcome ``ended``) and Asterisk's CDR (a leg in ``sac-fallback``: the caller landed in
the fallback queue); for the ceiling the CDR (the dialplan ended in its ``Hangup()`` with every key as
expected). Each step dials its own form of the number (``0<step>30033336``, a carrier-code form the
shipped dialplan takes; ``9<journey><step>`` for the ceiling), so records are tied to their step
exactly; a fallback leg, whose CDR no longer names the number, by its time.

The ceiling is the same journeys with no AGI: an extension per journey, installed only in this
instance, that plays the built prompts the walk heard (``Playback``), reads the keys with ``Read()``
and checks them, then hangs up. It is ramped the same way, after the IVR.
The replay (``--only ... replay``) is the AGI wire alone on the same calls: one call of each journey is
recorded through a relay in front of ``ivr serve`` (every command and Asterisk's answers), then a process
of its own answers the ramp's calls with ``ivr.agi.wire`` sending those commands, the journey chosen by
the caller ID and the answers (the keys); no flow, no store. Asterisk runs the shipped sac-ivr context
for it (a copy pointing at the replay's port, dialled as ``7<step>30033336``). Its CPU per call is what
the IVR's own wire costs on these calls; the rest of the IVR's is the engine's, the store's and the operations'.

CPU is read from the kernel's CPU clock of Asterisk and of ``ivr serve`` with its workers (to the nanosecond): over each
step's offer period, and over the whole ramp (its calls drained), net of each one's idle (the lower of a reading
before the ramps and one after them); SIPp's own from the reaped children.

Run from the repo root, as root:  .venv/bin/python bench/capacity_calls.py [--rates 2 4 6 8] [--step 30]
(see bench/README.md). Loopback only, bounded (``--max-minutes``, at most 10), and everything it starts
(Asterisk, ``ivr serve``, SIPp, their directories) is stopped and removed, even on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import fcntl
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The bench reuses the e2e harness (tests/e2e): settings, the IVR process, the journeys; imports follow.
sys.path.insert(0, str(REPO))

from bench.process_cpu import process_cpu_s
from ivr import phone
from ivr.asterisk import conf, sipp
from ivr.asterisk import root as asterisk_root
from ivr.asterisk.instance import Instance
from ivr.asterisk.timing import MARGIN_S
from ivr.cli import loop_factory
from ivr.config import Settings, StoreSettings
from ivr.store.seed import KNOWN_CALLER
from tests.e2e.conftest import e2e_settings, reap_stale_instances, root_lock
from tests.e2e.ivr_process import IvrProcess
from tests.e2e.scripts import (
    TECHNICAL_TICKET,
    TICKET_STATUS,
    UNKNOWN_CALLER,
    Journeys,
    Plays,
    boleto_of,
    month_before,
    walk,
)
from tests.e2e.store import StoreReader

#: The whole run, setup and both ramps, is cut at this bound.
MAX_MINUTES = 10.0
#: Any one wait for Asterisk in a call (its answer, its BYE after the last prompt): a call stuck longer failed.
RECV_TIMEOUT_S = 60.0
#: Read() waits this long for the keys once the question's prompt is over.
READ_TIMEOUT_S = 8
#: Extra seconds a scripted caller waits before each key group (see with_slack).
SLACK_S = 2.0
#: How long Asterisk's and the IVR's CPU is read with no call, before the ramps.
IDLE_S = 10.0
#: The ways astray calls went that the report shows, per step.
WAYS_SHOWN = 4
#: Steps are numbered in the dialled number with two digits.
MAX_STEPS = 100
CDR_COLUMNS = ("linkedid", "uniqueid", "start", "answer", "end", "duration", "billsec", "disposition", "src", "dst",
               "dcontext", "channel", "dstchannel", "lastapp")  # fmt: skip  (asterisk_conf/cdr_custom.conf.j2)


@dataclass(frozen=True)
class Journey:
    name: str
    caller: str
    inputs: tuple[str, ...]
    passes: str  # a node only this journey visits: the call must pass it, then end at `goodbye`


def journeys_of(ivr: IvrProcess) -> list[Journey]:
    return [
        Journey("ticket_status", KNOWN_CALLER, TICKET_STATUS, "status_in_progress"),
        Journey("failure_ticket", UNKNOWN_CALLER, TECHNICAL_TICKET, "failure_opened"),
        Journey("boleto_copy", KNOWN_CALLER, boleto_of(month_before(ivr.moment.date())), "document_sent"),
    ]


def with_slack(inputs: Sequence[str], slack_s: float) -> list[str | float]:
    """The inputs with an extra wait before each key group. SIPp cannot hear: it sends the keys a margin
    into the question's prompt (ivr.asterisk.timing.MARGIN_S) as measured, so an IVR later than that
    within one stretch of prompts loses them (a prompt before the question cannot be interrupted). The
    IVR waits for the keys, so the slack does not add up over a call; the question's own prompt and its
    input time-out (5 s for a menu, 8 s for a collect) bound it."""
    return [item for given in inputs for item in ((slack_s, given) if slack_s else (given,))]


# ---------------------------------------------------------------- the numbers each step dials


def ivr_number(sac: str, step: int) -> str:
    """The SAC number with the step as carrier code (0 + XX + number: a form sac-inbound takes)."""
    return f"0{step:02d}{sac}"


def ceiling_number(journey: int, step: int) -> str:
    return f"9{journey}{step:02d}"


def replay_number(sac: str, step: int) -> str:
    """The replay's calls: 7 + step + the number, which the bench's copy of sac-ivr takes as the IVR's form."""
    return f"7{step:02d}{sac}"


def step_of_number(number: str) -> int | None:
    """The step a dialled number (any form) belongs to; None for a number no step dials."""
    if len(number) > 4 and number[0] in "07" and number[1:3].isdigit():
        return int(number[1:3])
    if len(number) == 4 and number[0] in "89" and number.isdigit():  # 8...: a ceiling call that went astray
        return int(number[2:])
    return None


# ---------------------------------------------------------------- the ceiling's dialplan


def ceiling_context(name: str, journey: int, inputs: Sequence[str], stretches: Sequence[Plays], prefix: str) -> str:
    """The journey as a dialplan, for every step's number: what the walk heard before each input (the
    question's prompt last, read with the keys), each key group checked (a wrong one ends the call at
    8<journey><step>), then what it heard after the last input, then Hangup()."""

    def files(plays: Sequence[tuple[str, ...]]) -> str:
        return "&".join(f"{prefix}/{prompt}" for ids in plays for prompt in ids)

    lines = [f"[bench-{name}]", f"exten => _9{journey}XX,1,Answer()"]
    for given, plays in zip(inputs, stretches, strict=False):  # the last stretch, after the inputs: below
        if plays[:-1]:
            lines.append(f" same => n,Playback({files(plays[:-1])})")
        digits = 0 if given.endswith("#") else len(given)  # 0: Read() stops at '#'
        lines.append(f" same => n,Read(KEYS,{files(plays[-1:])},{digits},,1,{READ_TIMEOUT_S})")
        lines.append(f' same => n,GotoIf($["${{KEYS}}" != "{given.rstrip("#")}"]?8${{EXTEN:1}},1)')
    if stretches[len(inputs)]:
        lines.append(f" same => n,Playback({files(stretches[len(inputs)])})")
    lines += [" same => n,Hangup()", f"exten => _8{journey}XX,1,Hangup()", ""]
    return "\n".join(lines)


def ceiling_extensions(contexts: Sequence[tuple[str, str]]) -> str:
    """extensions_local.conf from (journey, context) in journey order: the numbers, added to sac-inbound
    (where test callers land), then the contexts."""
    numbers = [
        f"exten => _9{index}XX,1,Goto(bench-{name},${{EXTEN}},1)" for index, (name, _) in enumerate(contexts, 1)
    ]
    return "\n".join(["[sac-inbound]", *numbers, "", *(text for _, text in contexts)])


# ---------------------------------------------------------------- the replay: the AGI wire alone

#: The recording calls' step, which no ramp reaches: a journey's recording dials 7<RECORDING_STEP + journey>...
RECORDING_STEP = 90
#: Any one command of a replayed call (the longest: a prompt sequence, or keys awaited after it).
REPLAY_COMMAND_S = 120.0
#: Asked by a worker until it knows the files of a sequence played through (ivr/agi/channel.py, Peers):
#: its early calls ask, its steady state does not, so the replay leaves it out.
FIRST_CALLS_ONLY = 'GET VARIABLE "BACKGROUNDSTATUS"'


def replay_extensions(rendered: str, agi_port: int, replay_port: int) -> str:
    """The shipped sac-ivr context as `bench-replay`, its FastAGI address moved to the replay's port, and
    the numbers that reach it from sac-inbound, given as the IVR's form (0<step>...): Asterisk does for a
    replayed call what it does for a call to the IVR."""
    start = rendered.index("\n[sac-ivr]\n") + 1
    context = rendered[start : rendered.index("\n[", start)].replace("[sac-ivr]", "[bench-replay]", 1)
    address = f":{agi_port}/sac?"
    if context.count(address) != 1:
        raise RuntimeError(f"sac-ivr's FastAGI address ({address}) is not in the rendered dialplan once")
    context = context.replace(address, f":{replay_port}/sac?")
    return "\n".join(["[sac-inbound]", "exten => _7XX.,1,Goto(bench-replay,0${EXTEN:1},1)", "", context, ""])


@dataclass
class Recording:
    """One call relayed between Asterisk and `ivr serve`: each command line with the answer lines after it."""

    caller_id: str
    extension: str
    exchanges: list[tuple[str, list[str]]] = field(default_factory=list)


class AgiRecorder:
    """A FastAGI relay in front of `ivr serve` that keeps each call's exchanges (the replay's script)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.calls: list[Recording] = []

    async def relay(self, asterisk_in: asyncio.StreamReader, asterisk_out: asyncio.StreamWriter) -> None:
        ivr_in, ivr_out = await asyncio.open_connection(*self.address)
        header = await asterisk_in.readuntil(b"\n\n")
        fields = dict(line.partition(": ")[::2] for line in header.decode(errors="replace").splitlines())
        call = Recording(fields.get("agi_callerid", ""), fields.get("agi_extension", ""))
        ivr_out.write(header)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, commands: bool) -> None:
            try:
                while line := await source.readline():
                    text = line.decode(errors="replace").rstrip("\n")
                    if commands:
                        call.exchanges.append((text, []))
                    elif call.exchanges:
                        call.exchanges[-1][1].append(text)
                    sink.write(line)
                    await sink.drain()
            finally:
                sink.close()  # either side closing ends the call on the other, as without the relay

        calls = (pump(asterisk_in, ivr_out, commands=False), pump(ivr_in, asterisk_out, commands=True))
        await asyncio.gather(*calls, return_exceptions=True)
        self.calls.append(call)


_ENDPOS = re.compile(r" endpos=\d+")


def _final(answers: Sequence[str]) -> str:
    """A command's final answer (after any `100 Trying`), its play position left out."""
    return _ENDPOS.sub("", next((a for a in reversed(answers) if a.startswith("200 ")), ""))


async def serve_replay(port: int, script: Path, log: Path) -> None:
    """The replay (this script's ``--serve-replay`` child): ``ivr.agi.wire`` alone sending each call the
    commands `ivr serve` sent a recorded call of the same caller and answers. A call starts with the
    recordings of its caller ID; at each answer the recordings that had the same answer there are kept
    (keys choose the journey). An answer no recording had there (a key early or late) is noted and the
    call goes on with the recordings it had: it is off its journey, as an IVR call whose keys went astray,
    but still costs a whole call. No flow, no store, no operations: what the IVR's wire alone costs on
    these calls. Each call's line in `log`: its number, the journey it replayed to the end with the
    recording's answers (0: none), the commands sent."""
    from bench.asterisk_side import split_command
    from ivr.agi.wire import MAX_LINE, AgiConnection, AgiError, read_request
    from ivr.engine.channel import CallerHangup

    recordings = json.loads(script.read_text(encoding="utf-8"))

    async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader, timeout=10.0)
        except (AgiError, CallerHangup):  # no call: a probe, or a peer gone before its header
            writer.close()
            return
        conn = AgiConnection(reader, writer, request)
        chosen = [r for r in recordings if r["caller_id"] == request.get("agi_callerid")]
        sent, astray = 0, False
        try:
            while live := [r for r in chosen if sent < len(r["exchanges"])]:
                command, args = split_command(live[0]["exchanges"][sent][0])
                answer = _ENDPOS.sub("", (await conn.execute(command, *args, timeout=REPLAY_COMMAND_S)).raw)
                same = [r for r in live if _final(r["exchanges"][sent][1]) == answer]
                astray = astray or not same
                chosen = same or live
                sent += 1
        except (AgiError, CallerHangup):
            pass
        finally:
            await conn.close()
        done = [r["journey"] for r in chosen if len(r["exchanges"]) == sent and not astray]
        print(request.get("agi_extension"), done[0] if done else 0, sent, file=out, flush=True)

    with log.open("a", encoding="utf-8") as out:
        server = await asyncio.start_server(call, "127.0.0.1", port, limit=MAX_LINE, backlog=4096)
        print("listening", flush=True)
        async with server:
            await server.serve_forever()


@asynccontextmanager
async def replay_server(port: int, script: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """The replay in a process of its own (its CPU is its own), listening on `port`; killed at the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-replay", str(port), str(script), str(log),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        if await asyncio.wait_for(process.stdout.readline(), 10.0) != b"listening\n":
            raise RuntimeError(f"the replay did not start listening on {port}")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- measuring


def cpu_s(pid: int) -> float:
    """User + system CPU time the process and its living children have used, to the nanosecond
    (`process_cpu_s`; the IVR's idle over 10 s is a few 10 ms ticks): ``ivr serve``'s workers are its
    children (`--workers`, one per core by default), and a child's time reaches its parent's counters only
    once it has been reaped."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rpartition(")")[2].split()[1]
            if stat.parent.name == str(pid) or parent == str(pid):
                total += process_cpu_s(int(stat.parent.name))
        except OSError:  # a process that ended meanwhile
            continue
    return total


def children_cpu_s() -> float:
    """CPU of this process's reaped children: the SIPp processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def last_stats(text: str) -> dict[str, int]:
    """The counters of the last complete row of a SIPp ``-trace_stat`` file (';'-separated, a header row
    first; SIPp may be writing the last row as we read)."""
    rows = text.splitlines()
    if len(rows) < 2:
        return {}
    header = rows[0].split(";")
    for row in reversed(rows[1:]):
        values = row.split(";")
        if len(values) >= len(header) - 1:  # SIPp ends every row but the header with a ';'
            return {name: int(value) for name, value in zip(header, values, strict=False) if value.isdigit()}
    return {}


def epoch_of(unique_id: str) -> float:
    """When Asterisk created the channel: its unique id is ``[<systemname>-]<epoch>.<sequence>``."""
    try:
        return float(unique_id.rpartition("-")[2])
    except ValueError:
        return 0.0


@dataclass
class Load:
    """One SIPp process: a journey's share of a step."""

    journey: Journey
    offered: int
    directory: Path

    @property
    def stats(self) -> dict[str, int]:
        """SIPp's counters now: the header and the end of its stats file (read every second; it grows)."""
        path = self.directory / "stats.csv"
        if not path.exists():
            return {}
        with path.open("rb") as stats:
            header = stats.readline()
            stats.seek(max(stats.tell(), path.stat().st_size - 16384))
            return last_stats((header + stats.read()).decode(errors="replace"))


@dataclass
class Step:
    index: int
    rate: float  # calls/s offered, all journeys together
    started: float  # time.time() at the step's start
    ended: float = 0.0  # when its offer period ended
    loads: list[Load] = field(default_factory=list)
    concurrent: int = 0  # the most calls up at once (SIPp's CurrentCall, every process summed) while it offered
    asterisk_cpu_s: float = 0.0  # during its offer period
    agi_cpu_s: float = 0.0  # the FastAGI server's: `ivr serve` with its workers, or the replay
    ok: dict[str, int] = field(default_factory=dict)  # calls whose records show the journey's way, by journey
    astray: int = 0  # calls whose records show another way
    ways: Counter[str] = field(default_factory=Counter)  # the ways the astray calls went
    fallback: int = 0  # legs in the fallback queue (by time)

    @property
    def offered(self) -> int:
        return sum(load.offered for load in self.loads)

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def sipp(self, column: str) -> int:
        return sum(load.stats.get(column, 0) for load in self.loads)

    @property
    def completed(self) -> int:
        return self.sipp("SuccessfulCall(C)")

    def sipp_failures(self) -> Counter[str]:
        """SIPp's reasons for the calls it failed (FailedTimeoutOnRecv...), summed over the step's processes."""
        reasons: Counter[str] = Counter()
        for load in self.loads:
            reasons.update({k[:-3]: v for k, v in load.stats.items() if k.startswith("Failed") and k.endswith("(C)")})
        del reasons["FailedCall"]
        return +reasons  # only those that happened

    @property
    def failed(self) -> int:
        """Calls SIPp failed or did not complete, or whose records do not show the journey's way: the
        larger count (a call can fail both ways)."""
        by_records = sum(max(load.offered - self.ok.get(load.journey.name, 0), 0) for load in self.loads)
        return max(self.offered - self.completed, by_records + self.fallback)


@dataclass(frozen=True)
class Idle:
    asterisk: float  # CPU seconds per second with no call
    ivr: float

    def lower(self, other: Idle) -> Idle:
        """Each process's lower reading of two: a start-up's work (the IVR's workers settle for a minute or
        two after start, at 3-5% of a core) read as idle would be taken off every call."""
        return Idle(min(self.asterisk, other.asterisk), min(self.ivr, other.ivr))


@dataclass
class Ramp:
    target: str  # "ivr" or "ceiling"
    steps: list[Step]
    seconds: float  # from the first step to the last call drained
    asterisk_cpu_s: float  # over `seconds`
    agi_cpu_s: float
    sipp_cpu_s: float

    @property
    def clean(self) -> list[Step]:
        """The steps before the first with a failed call."""
        first_bad = next((i for i, s in enumerate(self.steps) if s.failed), len(self.steps))
        return self.steps[:first_bad]

    @property
    def sustained(self) -> Step | None:
        return self.clean[-1] if self.clean else None

    @property
    def calls(self) -> int:
        return sum(s.offered for s in self.steps)

    def per_call_ms(self, cpu_s: float, idle_per_s: float) -> float:
        """CPU per call over the ramp, net of what the process burns with no call."""
        return 1000 * (cpu_s - idle_per_s * self.seconds) / self.calls


# ---------------------------------------------------------------- the ramp


class Bench:
    def __init__(self, settings: Settings, instance: Instance, ivr: IvrProcess, work: Path) -> None:
        self.settings = settings
        self.instance = instance
        self.ivr = ivr
        self.work = work
        self.running: list[asyncio.subprocess.Process] = []
        self.replay_log = work / "replay.log"  # a line per replayed call (serve_replay)

    async def idle(self, seconds: float) -> Idle:
        """Asterisk's and the IVR's CPU with no call at all (timers, the IVR's background work)."""
        asterisk_pid, ivr_pid = self.instance.pid(), self.ivr.pid
        assert asterisk_pid is not None and ivr_pid is not None
        before = (cpu_s(asterisk_pid), cpu_s(ivr_pid))
        await asyncio.sleep(seconds)
        return Idle((cpu_s(asterisk_pid) - before[0]) / seconds, (cpu_s(ivr_pid) - before[1]) / seconds)

    async def ramp(
        self, target: str, scripts: dict[str, sipp.CallScript], number: Callable[[int, int], str],
        journeys: list[Journey], rates: Sequence[float], step_s: float, deadline: float, agi_pid: int,
    ) -> Ramp:  # fmt: skip
        """`number(journey, step)`: what a journey's calls dial in a step (journeys counted from 1);
        `agi_pid`: the FastAGI server whose CPU is read (`ivr serve`, or the replay)."""
        asterisk_pid = self.instance.pid()
        assert asterisk_pid is not None
        begun, sipp_before = time.time(), children_cpu_s()
        cpu_before = (cpu_s(asterisk_pid), cpu_s(agi_pid))
        steps: list[Step] = []
        longest = max(script.steps_s for script in scripts.values()) + RECV_TIMEOUT_S
        for index, rate in enumerate(rates[:MAX_STEPS]):
            if steps and (self._any_failed(target, steps, journeys) or time.time() + step_s + longest > deadline):
                break
            step = Step(index, rate, time.time())
            steps.append(step)
            cpu = (cpu_s(asterisk_pid), cpu_s(agi_pid))
            for j, journey in enumerate(journeys, 1):
                script = dataclasses.replace(scripts[journey.name], number=number(j, index))
                step.loads.append(await self._offer(target, journey, script, rate / len(journeys), step_s))
            step.rate = step.offered / step_s  # what SIPp was told, after rounding each journey's share to whole calls
            while time.time() - step.started < step_s:
                await asyncio.sleep(1.0)
                up = sum(load.stats.get("CurrentCall", 0) for s in steps for load in s.loads)
                step.concurrent = max(step.concurrent, up)
            step.ended = time.time()
            step.asterisk_cpu_s, step.agi_cpu_s = cpu_s(asterisk_pid) - cpu[0], cpu_s(agi_pid) - cpu[1]
            print(f"  {target}: {step.rate:.2f} calls/s for {step.seconds:.0f} s, {step.concurrent} up", flush=True)
        await self._drain(deadline)
        await self._settle(target)
        self._check(target, steps, journeys)
        return Ramp(
            target, steps, time.time() - begun, cpu_s(asterisk_pid) - cpu_before[0], cpu_s(agi_pid) - cpu_before[1],
            children_cpu_s() - sipp_before,
        )  # fmt: skip

    async def record(
        self, scripts: dict[str, sipp.CallScript], journeys: list[Journey], number: Callable[[int, int], str],
        port: int, deadline: float,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """One call of each journey, at once, through a relay on `port` in front of `ivr serve`: the
        replay's recordings. Each must have gone its journey's way in the store."""
        recorder = AgiRecorder(self.settings.agi.host, self.ivr.agi_port)
        relay = await asyncio.start_server(recorder.relay, self.settings.agi.host, port)
        try:
            for j, journey in enumerate(journeys, 1):
                script = dataclasses.replace(scripts[journey.name], number=number(j, RECORDING_STEP + j))
                await self._offer("record", journey, script, 1.0, 1.0)
            await self._drain(deadline)
        finally:
            relay.close()
        await self._settle("ivr")
        reader = StoreReader(self.ivr.database)
        stored = {call.dialled: call for call in map(reader.call, reader.protocols())}
        recordings = []
        for j, journey in enumerate(journeys, 1):
            mine = [c for c in recorder.calls if step_of_number(c.extension) == RECORDING_STEP + j]
            call = stored.get(mine[0].extension) if len(mine) == 1 else None
            if call is None or journey.passes not in call.path or call.path[-1] != "goodbye":
                raise RuntimeError(f"the recording of {journey.name} did not go its way: {call.path if call else mine}")
            exchanges = [e for e in mine[0].exchanges if e[0] != FIRST_CALLS_ONLY]
            recordings.append({"journey": j, "caller_id": mine[0].caller_id, "exchanges": exchanges})
            print(f"  recorded {journey.name}: {len(exchanges)} AGI commands", flush=True)
        return recordings

    async def _offer(self, target: str, journey: Journey, script: sipp.CallScript, rate: float, step_s: float) -> Load:
        """A SIPp process placing `rate` calls/s of the journey for `step_s` seconds, each call bounded."""
        directory = Path(tempfile.mkdtemp(prefix=f"{target}-{journey.name}-", dir=self.work))
        (directory / "scenario.xml").write_text(sipp.scenario_xml(script), encoding="iso-8859-1")
        calls = max(1, round(rate * step_s))
        sip = self.settings.sip
        bound_s = step_s + script.steps_s + 2 * RECV_TIMEOUT_S
        # The single-call runner's ports (ivr/asterisk/sipp.py), held for the bench's run: SIPp's default
        # SIP port would be shared by concurrent SIPp processes.
        ports = ["-p", str(sipp.SIP_PORTS.take()), "-mp", str(sipp.MEDIA_PORTS.take())]
        command = [
            shutil.which("sipp") or "sipp", f"{sip.host}:{sip.port}", "-s", script.number,
            "-sf", str(directory / "scenario.xml"), "-r", "1", "-rp", f"{max(1, round(1000 / rate))}ms",
            "-m", str(calls), "-l", str(calls), "-i", sip.tester_address, "-mi", sip.tester_address, *ports,
            "-nostdin", "-timeout", f"{bound_s:.0f}s", "-recv_timeout", f"{RECV_TIMEOUT_S:.0f}s",
            "-trace_stat", "-stf", str(directory / "stats.csv"), "-fd", "1",
            "-trace_err", "-error_file", str(directory / "errors.log"),
        ]  # fmt: skip
        with (directory / "stderr.log").open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=directory, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )  # fmt: skip
        self.running.append(process)
        await asyncio.sleep(0.2)
        if process.returncode is not None and not (directory / "stats.csv").exists():
            detail = (directory / "stderr.log").read_text(errors="replace").strip()[-500:]
            raise sipp.SippError(f"sipp exited at once ({process.returncode}): {detail}")
        return Load(journey, calls, directory)

    async def _drain(self, deadline: float) -> None:
        """Every SIPp done (each is bounded by its -timeout, the whole by the deadline), then reaped."""
        try:
            async with asyncio.timeout(max(deadline - time.time(), 1.0)):
                await asyncio.gather(*(p.wait() for p in self.running))
        finally:
            self.kill_sipp()

    def kill_sipp(self) -> None:
        for process in self.running:
            if process.returncode is None:
                process.kill()
        self.running.clear()

    async def _settle(self, target: str) -> None:
        """The IVR writes its rows in batches: wait (bounded) until every call in the store has ended."""
        if target != "ivr":
            return
        reader = StoreReader(self.ivr.database)
        for _ in range(50):
            if all(reader.call(p).ended for p in reader.protocols()):
                return
            await asyncio.sleep(0.2)

    # ------------------------------------------------ the records: the store (IVR) and the CDR (both)

    def _cdr(self) -> list[dict[str, str]]:
        path = self.instance.host_path(f"{self.instance.layout.log}/cdr-custom/Master.csv")
        if not path.exists():
            return []
        with path.open(encoding="utf-8", errors="replace", newline="") as rows:
            return [dict(zip(CDR_COLUMNS, row, strict=False)) for row in csv.reader(rows)]

    def _any_failed(self, target: str, steps: list[Step], journeys: list[Journey]) -> bool:
        """A call has already failed: SIPp says so, or the records of the calls ended so far."""
        self._check(target, steps, journeys)
        return any(s.sipp("FailedCall(C)") or s.astray or s.fallback for s in steps)

    def _check(self, target: str, steps: list[Step], journeys: list[Journey]) -> None:
        """Count, per step and journey, the calls whose records show them going the journey's way."""
        by_index = {s.index: s for s in steps}
        for step in steps:
            step.ok, step.astray, step.fallback, step.ways = {}, 0, 0, Counter()

        def counted(step: Step | None, journey: Journey | None, way: str) -> None:
            if step is None:
                return
            if journey is None:
                step.astray += 1
                step.ways[way] += 1
            else:
                step.ok[journey.name] = step.ok.get(journey.name, 0) + 1

        cdr = self._cdr()
        for row in cdr:
            if row["dcontext"] == "sac-fallback":
                at = epoch_of(row["uniqueid"])
                step = next((s for s in reversed(steps) if s.started - 1 <= at), None)
                if step is not None:
                    step.fallback += 1
        if target == "ceiling":
            contexts = {f"bench-{j.name}": j for j in journeys}
            for row in cdr:
                index, journey = step_of_number(row["dst"]), contexts.get(row["dcontext"])
                if journey is not None and index is not None:
                    finished = row["dst"].startswith("9") and row["lastapp"] == "Hangup"
                    way = f"{row['dcontext']} ended at {row['dst'][:2]}.. in {row['lastapp']}"
                    counted(by_index.get(index), journey if finished else None, way)
            return
        if target == "replay":
            lines = self.replay_log.read_text(encoding="utf-8").splitlines() if self.replay_log.exists() else []
            for extension, number, sent in (line.split() for line in lines):
                replayed = journeys[int(number) - 1] if int(number) else None
                way = f"left its recordings after {sent} commands"
                index = step_of_number(extension)
                counted(None if index is None else by_index.get(index), replayed, way)
            return
        reader = StoreReader(self.ivr.database)
        for protocol in reader.protocols():
            call = reader.call(protocol)
            index = step_of_number(call.dialled)
            if index is None or not call.ended:
                continue
            way = [j for j in journeys if call.caller_id == phone.normalise(j.caller) and j.passes in call.path]
            finished = len(way) == 1 and call.path[-1] == "goodbye" and call.outcome == "ended"
            keyed = [f"{node}[{given}:{outcome}]" for node, given, outcome in call.visits if given]
            said = " > ".join([*keyed, *(f"{node}[:{outcome}]" for node, _, outcome in call.visits[-2:])])
            counted(by_index.get(index), way[0] if finished else None, f"{call.caller_id}: ... {said} ({call.outcome})")


# ---------------------------------------------------------------- setup and report


@contextmanager
def private_asterisk(settings: Settings) -> Iterator[Instance]:
    """A private instance (named as the e2e ones are, so a dead bench's is reaped too); stopped and
    removed at the end. It holds the e2e sessions' lock alone (as a `solo` e2e test does) meanwhile:
    provisioning replaces the root's shared prompts, which a running e2e session's calls play, and the
    figures need the machine to themselves anyway."""
    root = settings.asterisk_root
    print("waiting for any e2e session sharing the Asterisk root to end", flush=True)
    with root_lock(root, "sessions", fcntl.LOCK_EX):
        reap_stale_instances(root)
        layout = conf.Layout.private(f"e2e-{os.getpid()}-capacity-{secrets.token_hex(2)}")
        instance = Instance(root, layout)
        try:
            asterisk_root.provision(settings, layout)
            instance.start()
            yield instance
        finally:
            instance.stop()
            shutil.rmtree(instance.host_path(layout.etc).parent, ignore_errors=True)


@asynccontextmanager
async def ivr_serve(settings: Settings, directory: Path, env: dict[str, str]) -> AsyncIterator[IvrProcess]:
    directory.mkdir()
    process = IvrProcess(settings, directory, env)
    try:
        await asyncio.to_thread(process.seed)  # it runs an event loop of its own
        process.start()
        yield process
        process.stop()
    finally:
        process.kill()


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def report(
    ramps: Sequence[Ramp], idles: tuple[Idle, Idle], lengths: dict[str, float], load_before: float, started: float
) -> None:
    """`idles`: read before the ramps and after them; the lower of the two is taken off."""
    idle = idles[0].lower(idles[1])
    print()
    print(
        f"{os.cpu_count()} cores, load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
        "journeys in equal shares: " + ", ".join(f"{name} ({s:.0f} s)" for name, s in lengths.items())
    )
    print(
        f"{'target':<8}{'calls/s':>8}{'offered':>8}{'done':>6}{'failed':>7}{'astray':>7}{'fallbk':>7}{'up':>5}"
        f"{'Asterisk CPU':>13}{'AGI CPU':>8}{'AGI/Ast':>8}"
    )
    for ramp in ramps:
        for s in ramp.steps:
            ivr, share = (_pct(s.agi_cpu_s, s.seconds), _pct(s.agi_cpu_s, s.asterisk_cpu_s))
            if ramp.target == "ceiling":
                ivr = share = "-"
            print(
                f"{ramp.target:<8}{s.rate:>8.2f}{s.offered:>8}{s.completed:>6}{s.failed:>7}{s.astray:>7}{s.fallback:>7}"
                f"{s.concurrent:>5}{_pct(s.asterisk_cpu_s, s.seconds):>13}{ivr:>8}{share:>8}"
            )
    for ramp in ramps:
        best = ramp.sustained
        top = "the highest step offered" if len(ramp.clean) == len(ramp.steps) else "the step before the first failure"
        said = f"{best.rate:g} calls/s, {best.concurrent} calls up ({top})" if best else "none: the first step failed"
        cpu = f"Asterisk {ramp.per_call_ms(ramp.asterisk_cpu_s, idle.asterisk):.0f} ms"
        if ramp.target == "ivr":
            cpu += f", IVR {ramp.per_call_ms(ramp.agi_cpu_s, idle.ivr):.0f} ms"
        elif ramp.target == "replay":  # an asyncio server with no timer spends nothing idle
            cpu += f", replay {ramp.per_call_ms(ramp.agi_cpu_s, 0.0):.0f} ms"
        print(f"{ramp.target}: sustained with 0 failures: {said}")
        print(f"  CPU per call over the ramp ({ramp.seconds:.0f} s, drained), net of idle: {cpu}")
        print(f"  SIPp's CPU over the ramp: {ramp.sipp_cpu_s:.1f} s")
    before, after = (f"Asterisk {_pct(i.asterisk, 1)}, IVR {_pct(i.ivr, 1)}" for i in idles)
    print(f"idle (no call, {IDLE_S:.0f} s), of a core: before the ramps {before}; after {after}; the lower taken off")
    for ramp in ramps:
        for s in ramp.steps:
            for way, count in s.ways.most_common(WAYS_SHOWN):
                print(f"  {ramp.target} at {s.rate:.2f} calls/s, {count} astray: {way}")
            if s.sipp_failures():
                reasons = ", ".join(f"{reason} {count}" for reason, count in s.sipp_failures().items())
                print(f"  {ramp.target} at {s.rate:.2f} calls/s, SIPp failed: {reasons}")
    by_target = {r.target: r for r in ramps}
    ivr_ramp, ceiling = by_target.get("ivr"), by_target.get("ceiling")
    if ivr_ramp and ceiling and ivr_ramp.sustained and ceiling.sustained:
        ratio = ivr_ramp.sustained.rate / ceiling.sustained.rate
        bound = " (a lower bound: the ceiling never failed)" if len(ceiling.clean) == len(ceiling.steps) else ""
        print(f"IVR / ceiling, sustained calls/s: x{ratio:.2f}{bound} (goal >= 0.9)")
    per_call: dict[str, float] = {}
    for ramp in ramps:
        if ramp.target == "ceiling":
            continue
        agi_ms = ramp.per_call_ms(ramp.agi_cpu_s, idle.ivr if ramp.target == "ivr" else 0.0)
        per_call[ramp.target] = agi_ms
        asterisk_ms = ramp.per_call_ms(ramp.asterisk_cpu_s, idle.asterisk)
        gross, net = _pct(ramp.agi_cpu_s, ramp.asterisk_cpu_s), _pct(agi_ms, asterisk_ms)
        who = "IVR" if ramp.target == "ivr" else "The replay's"
        goal = " (goal <= 10%)" if ramp.target == "ivr" else ""
        print(f"{who} CPU / Asterisk CPU over its ramp: {gross}, per call net of idle {net}{goal}")
    if len(per_call) == 2:
        print(f"IVR / replay, CPU per call: x{per_call['ivr'] / per_call['replay']:.1f}")
    print(f"bench took {time.time() - started:.0f} s")


async def main(
    rates: Sequence[float], step_s: float, slack_s: float, max_minutes: float, targets: Sequence[str],
    ivr_env: dict[str, str],
) -> None:  # fmt: skip
    started, load_before = time.time(), os.getloadavg()[0]
    deadline = started + 60 * max_minutes - IDLE_S  # the idle read after the ramps is within the bound too
    settings = e2e_settings()
    with tempfile.TemporaryDirectory(prefix="sac-capacity-") as tmp:
        work = Path(tmp)
        async with AsyncExitStack() as stack:  # unwound in reverse: the IVR, then Asterisk
            instance = stack.enter_context(private_asterisk(settings))
            ivr = await stack.enter_async_context(ivr_serve(settings, work / "ivr", ivr_env))
            journeys = journeys_of(ivr)
            timed = Journeys(ivr)  # the flows the IVR published, timed against the built prompts
            # A float input is an extra wait on SIPp's timeline (tests/e2e/scripts.py): `slack_s` before each key group.
            scripts = {j.name: await timed.script(j.caller, *with_slack(j.inputs, slack_s)) for j in journeys}
            contexts = [
                (j.name, ceiling_context(j.name, index, j.inputs, (await walk(ivr, j.caller, j.inputs)).stretches,
                                         settings.agi.sound_prefix))
                for index, j in enumerate(journeys, 1)
            ]  # fmt: skip
            # Written once the walks know what the ceiling plays; read by a dialplan reload.
            local = instance.host_path(f"{instance.layout.etc}/extensions_local.conf")
            replay_port = free_port() if "replay" in targets else 0
            extensions = ceiling_extensions(contexts)
            if replay_port:
                shipped = instance.host_path(f"{instance.layout.etc}/extensions.conf").read_text(encoding="utf-8")
                extensions += "\n" + replay_extensions(shipped, ivr.agi_port, replay_port)
            local.write_text(extensions, encoding="utf-8")
            instance.command("dialplan reload")
            bench = Bench(settings, instance, ivr, work)
            stack.callback(bench.kill_sipp)
            idle = await bench.idle(IDLE_S)
            numbers: dict[str, Callable[[int, int], str]] = {
                "ivr": lambda journey, step: ivr_number(scripts[journeys[0].name].number, step),
                "ceiling": ceiling_number,
                "replay": lambda journey, step: replay_number(scripts[journeys[0].name].number, step),
            }
            ramps = []
            for target in targets:
                agi_pid = ivr.pid
                if target == "replay":
                    recordings = work / "replay.json"
                    made = await bench.record(scripts, journeys, numbers["replay"], replay_port, deadline)
                    recordings.write_text(json.dumps(made), encoding="utf-8")
                    replay = await stack.enter_async_context(replay_server(replay_port, recordings, bench.replay_log))
                    agi_pid = replay.pid
                assert agi_pid is not None
                number = numbers[target]
                ramps.append(await bench.ramp(target, scripts, number, journeys, rates, step_s, deadline, agi_pid))
            idle_after = await bench.idle(IDLE_S)
            print(f"keys sent {MARGIN_S:g} s into each question's prompt plus {slack_s:g} s of slack")
            lengths = {name: script.steps_s for name, script in scripts.items()}
            report(ramps, (idle, idle_after), lengths, load_before, started)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, with SIGTERM taken as Ctrl-C: the main task is cancelled and every cleanup runs."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await coroutine

    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise SystemExit("capacity_calls: interrupted; everything it started is stopped") from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[2, 4, 6, 8], help="calls/s offered, step by step")
    parser.add_argument("--step", type=float, default=30.0, help="seconds each step offers its rate")
    parser.add_argument(
        "--slack", type=float, default=SLACK_S, help="extra seconds before each key group (default %(default)s)"
    )
    parser.add_argument("--max-minutes", type=float, default=MAX_MINUTES, help="bound on the whole run (at most 10)")
    parser.add_argument(
        "--only", nargs="+", choices=("ivr", "ceiling", "replay"),
        help="ramp these targets only, in this order (replay: the AGI wire alone replaying the IVR's commands)",
    )  # fmt: skip
    parser.add_argument("--serve-replay", nargs=3, metavar=("PORT", "RECORDINGS", "LOG"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--ivr-env", nargs="*", default=[], metavar="IVR_X=VALUE", help="extra settings for ivr serve (experiments)"
    )
    args = parser.parse_args()
    # The store's production flush interval: the e2e harness shortens it (rows sooner, shorter waits), which
    # costs a transaction every 0.2 s.
    ivr_env = {"IVR_STORE__EVENT_FLUSH_INTERVAL_S": str(StoreSettings().event_flush_interval_s)}
    ivr_env |= dict(item.split("=", 1) for item in args.ivr_env)
    if os.geteuid() != 0:
        raise SystemExit("capacity_calls: run as root (Asterisk runs chrooted)")
    if args.serve_replay:  # the replay's own process (replay_server), until it is killed
        port, recordings, log = args.serve_replay
        with asyncio.Runner(loop_factory=loop_factory("serve")) as runner:  # the loop `ivr serve` runs on
            runner.run(serve_replay(int(port), Path(recordings), Path(log)))
    else:
        targets = args.only or ["ivr", "ceiling"]
        run(main(args.rates, args.step, args.slack, min(args.max_minutes, MAX_MINUTES), targets, ivr_env))
