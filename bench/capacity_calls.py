"""Capacity on real calls: a SIPp ramp through Asterisk 22 and ``ivr serve``, beside a dialplan-only IVR.

One private Asterisk instance on free loopback ports (the e2e harness's: tests/e2e/conftest.py) and one
``ivr serve`` on a demo-seeded SQLite store (tests/e2e/ivr_process.py) take callers doing three real
DTMF journeys, in equal shares: the status of a ticket, a failure ticket opened by an unknown caller
who keys a CNPJ, and a boleto copy for the previous month (the keys of tests/e2e/scripts.py, timed by a
walk of the same call against the built prompts' lengths, as the e2e tests time them). One SIPp process
per journey and step offers its share of the step's rate (``-r``/``-rp``/``-m``); the next step starts
when the offer period of this one ends, so calls of consecutive steps overlap as real traffic does.
The ramp stops after the first step in which a call failed.

A call failed if SIPp reports it failed or timed out, or its record says it did not go the journey's
way: for the IVR the store (it must pass the journey's own node and end at ``goodbye``, outcome
``ended``) and Asterisk's CDR (a leg in ``sac-fallback``: the caller landed in the fallback queue); for
the ceiling the CDR (the dialplan must end in its ``Hangup()``, not in ``wrong``). Records are tied to
a step by the time in Asterisk's unique id, so a step's counts are approximate at its edges.

The ceiling is the same journeys with no AGI: an extension per journey, installed only in this
instance, that plays the same built prompts the walk heard (``Playback``) and reads the same keys with
``Read()`` (checked against the journey's), then hangs up. It is ramped the same way after the IVR.

CPU is read from ``/proc/<pid>/stat`` (utime + stime) of Asterisk and of ``ivr serve`` at each step's
edges; SIPp's own CPU from this process's reaped children.

Run from the repo root, as root:  .venv/bin/python bench/capacity_calls.py [--rates 1 2 3 4] [--step 30]
(see bench/README.md). Loopback only, bounded (``--max-minutes``, at most 10), and everything it starts
is stopped, even on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import os
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the bench reuses the e2e harness (tests/e2e) for Asterisk, the IVR and the journeys

from ivr import phone  # noqa: E402
from ivr.asterisk import conf, sipp  # noqa: E402
from ivr.asterisk import root as asterisk_root  # noqa: E402
from ivr.asterisk.instance import Instance  # noqa: E402
from ivr.config import Settings  # noqa: E402
from ivr.store.seed import KNOWN_CALLER  # noqa: E402
from tests.e2e.conftest import e2e_settings, reap_stale_instances  # noqa: E402
from tests.e2e.ivr_process import IvrProcess  # noqa: E402
from tests.e2e.scripts import (  # noqa: E402
    TECHNICAL_TICKET,
    TICKET_STATUS,
    UNKNOWN_CALLER,
    Journeys,
    Plays,
    boleto_of,
    month_before,
    walk,
)
from tests.e2e.store import StoreReader  # noqa: E402

#: The whole run, setup and both ramps, is cut at this bound (the brief's ten minutes at most).
MAX_MINUTES = 10.0
#: Any one wait for Asterisk in a call (its answer, its BYE after the last prompt): a call stuck longer failed.
RECV_TIMEOUT_S = 60.0
#: Read() waits this long for the keys after the question's prompt (the IVR's collect waits about as long).
READ_TIMEOUT_S = 8
#: The ceiling's numbers, one per journey, in the tester's context (sac-inbound).
CEILING_NUMBER = "91{index:02d}"


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


# ---------------------------------------------------------------- the ceiling's dialplan


def ceiling_context(name: str, inputs: Sequence[str], stretches: Sequence[Plays], prefix: str) -> str:
    """The journey as a dialplan: what the walk heard before each input (the question's prompt last, read
    with the keys), the keys checked, then what it heard after the last input, then Hangup()."""

    def files(plays: Sequence[tuple[str, ...]]) -> str:
        return "&".join(f"{prefix}/{prompt}" for ids in plays for prompt in ids)

    lines = [f"[bench-{name}]", "exten => s,1,Answer()"]
    for given, plays in zip(inputs, stretches):
        if plays[:-1]:
            lines.append(f" same => n,Playback({files(plays[:-1])})")
        digits = 0 if given.endswith("#") else len(given)  # 0: Read() stops at '#'
        lines.append(f" same => n,Read(KEYS,{files(plays[-1:])},{digits},,1,{READ_TIMEOUT_S})")
        lines.append(f' same => n,GotoIf($["${{KEYS}}" != "{given.rstrip("#")}"]?wrong,1)')
    if stretches[len(inputs)]:
        lines.append(f" same => n,Playback({files(stretches[len(inputs)])})")
    lines += [" same => n,Hangup()", "exten => wrong,1,Hangup()", ""]
    return "\n".join(lines)


def ceiling_extensions(contexts: dict[str, tuple[str, str]]) -> str:
    """extensions_local.conf from {number: (journey, context)}: the numbers, added to sac-inbound (where
    test callers land), then the contexts."""
    numbers = [f"exten => {number},1,Goto(bench-{name},s,1)" for number, (name, _) in contexts.items()]
    return "\n".join(["[sac-inbound]", *numbers, "", *(text for _, text in contexts.values())])


# ---------------------------------------------------------------- measuring


def cpu_s(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU of this process's reaped children: the SIPp processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def last_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` file (';'-separated, a header row first); {} if none yet."""
    try:
        rows = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    if len(rows) < 2:
        return {}
    header, last = rows[0].split(";"), rows[-1].split(";")
    return dict(zip(header, last)) if len(last) >= len(header) - 1 else {}


def epoch_of(unique_id: str) -> float:
    """When Asterisk created the channel: its unique id is ``<systemname>-<epoch>.<sequence>``."""
    stamp = unique_id.rpartition("-")[2]
    try:
        return float(stamp)
    except ValueError:
        return 0.0


def stat_int(stats: dict[str, str], column: str) -> int:
    value = stats.get(column, "").strip()
    return int(value) if value.isdigit() else 0


@dataclass
class Load:
    """One SIPp process: a journey's share of a step."""

    journey: Journey
    offered: int
    directory: Path
    process: asyncio.subprocess.Process

    @property
    def stats(self) -> dict[str, str]:
        return last_stats(self.directory / "stats.csv")


@dataclass
class Step:
    rate: float  # calls/s offered, all journeys together
    started: float  # time.time() at the step's start
    ended: float = 0.0  # when the next step started (or the offer of the last one ended)
    loads: list[Load] = field(default_factory=list)
    concurrent: int = 0  # the most calls up at once (SIPp's CurrentCall, summed) while it offered
    asterisk_cpu_s: float = 0.0  # during its offer period
    ivr_cpu_s: float = 0.0
    ok: dict[str, int] = field(default_factory=dict)  # calls that went the journey's way, by the records
    fallback: int = 0  # calls that landed in the fallback queue

    @property
    def offered(self) -> int:
        return sum(load.offered for load in self.loads)

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def sipp(self, column: str) -> int:
        return sum(stat_int(load.stats, column) for load in self.loads)

    @property
    def completed(self) -> int:
        return self.sipp("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        """Calls SIPp failed, or that the records do not show going the journey's way (whichever is more)."""
        by_records = sum(load.offered - self.ok.get(load.journey.name, 0) for load in self.loads)
        return max(self.sipp("FailedCall(C)"), by_records, self.offered - self.completed)


@dataclass
class Ramp:
    target: str  # "ivr" or "ceiling"
    steps: list[Step]
    sipp_cpu_s: float
    call_s: dict[str, float]  # each journey's scripted length

    @property
    def clean(self) -> list[Step]:
        """The steps before the first with a failed call."""
        first_bad = next((i for i, s in enumerate(self.steps) if s.failed), len(self.steps))
        return self.steps[:first_bad]

    @property
    def sustained(self) -> Step | None:
        return self.clean[-1] if self.clean else None


# ---------------------------------------------------------------- the ramp


class Bench:
    def __init__(self, settings: Settings, instance: Instance, ivr: IvrProcess, work: Path) -> None:
        self.settings = settings
        self.instance = instance
        self.ivr = ivr
        self.work = work
        self.running: list[asyncio.subprocess.Process] = []
        self._astray = False  # a call whose records show it leaving its journey's way

    @property
    def cdr_file(self) -> Path:
        return self.instance.host_path(f"{self.instance.layout.log}/cdr-custom/Master.csv")

    async def ramp(
        self, target: str, scripts: dict[str, sipp.CallScript], journeys: list[Journey], rates: Sequence[float],
        step_s: float, deadline: float,
    ) -> Ramp:  # fmt: skip
        asterisk_pid, ivr_pid = self.instance.pid(), self.ivr.pid
        assert asterisk_pid is not None and ivr_pid is not None
        sipp_before = children_cpu_s()
        steps: list[Step] = []
        longest = max(script.steps_s for script in scripts.values()) + RECV_TIMEOUT_S
        for rate in rates:
            if steps and (self._known_failures(target, steps, journeys) or time.time() + step_s + longest > deadline):
                break
            step = Step(rate, time.time())
            steps.append(step)
            cpu = (cpu_s(asterisk_pid), cpu_s(ivr_pid))
            for journey in journeys:
                step.loads.append(await self._offer(target, journey, scripts[journey.name], rate / len(journeys), step_s))
            while time.time() - step.started < step_s:  # SIPp's CurrentCall, summed over every step's processes
                await asyncio.sleep(1.0)
                step.concurrent = max(step.concurrent, sum(stat_int(l.stats, "CurrentCall") for s in steps for l in s.loads))
            step.ended = time.time()
            step.asterisk_cpu_s, step.ivr_cpu_s = cpu_s(asterisk_pid) - cpu[0], cpu_s(ivr_pid) - cpu[1]
            print(f"  {target}: offered {rate:g} calls/s for {step.seconds:.0f} s, {step.concurrent} calls up", flush=True)
        await self._drain(deadline)
        await self._settle_records(target, steps)
        self._check(target, steps, journeys)
        call_s = {name: script.steps_s for name, script in scripts.items()}
        return Ramp(target, steps, children_cpu_s() - sipp_before, call_s)

    async def _offer(self, target: str, journey: Journey, script: sipp.CallScript, rate: float, step_s: float) -> Load:
        """A SIPp process placing `rate` calls/s of the journey for `step_s` seconds."""
        directory = Path(tempfile.mkdtemp(prefix=f"{target}-{journey.name}-", dir=self.work))
        (directory / "scenario.xml").write_text(sipp.scenario_xml(script), encoding="iso-8859-1")
        calls = max(1, round(rate * step_s))
        period_ms = max(1, round(1000 / rate))
        sip = self.settings.sip
        media = sipp._free_media_port()  # noqa: SLF001 - the single-call runner's port choice, reused
        bound_s = step_s + script.steps_s + 2 * RECV_TIMEOUT_S
        command = [
            shutil.which("sipp") or "sipp", f"{sip.host}:{sip.port}", "-s", script.number,
            "-sf", str(directory / "scenario.xml"), "-r", "1", "-rp", f"{period_ms}ms", "-m", str(calls),
            "-l", str(calls), "-i", sip.tester_address, "-p", str(sipp._free_sip_port()),  # noqa: SLF001
            "-mi", sip.tester_address, "-mp", str(media), "-nostdin",
            "-timeout", f"{bound_s:.0f}s", "-recv_timeout", f"{RECV_TIMEOUT_S:.0f}s",
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
        return Load(journey, calls, directory, process)

    async def _drain(self, deadline: float) -> None:
        """Every SIPp done (each is bounded by its -timeout), then reaped."""
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

    # ------------------------------------------------ the records: store (IVR) and CDR (both)

    def _cdr(self) -> list[dict[str, str]]:
        names = ["linkedid", "uniqueid", "start", "answer", "end", "duration", "billsec", "disposition", "src",
                 "dst", "dcontext", "channel", "dstchannel", "lastapp"]  # fmt: skip
        try:
            with self.cdr_file.open(encoding="utf-8", errors="replace", newline="") as rows:
                return [dict(zip(names, row)) for row in csv.reader(rows)]
        except FileNotFoundError:
            return []

    def _known_failures(self, target: str, steps: list[Step], journeys: list[Journey]) -> bool:
        """A call already failed (SIPp says so, a call went astray, or one landed in the fallback queue)."""
        if any(s.sipp("FailedCall(C)") for s in steps):
            return True
        self._check(target, steps, journeys)
        return any(s.fallback for s in steps) or self._astray

    async def _settle_records(self, target: str, steps: list[Step]) -> None:
        """The IVR's last rows reach the store in batches: wait (bounded) until every call it has is ended."""
        if target != "ivr":
            return
        reader = StoreReader(self.ivr.database)
        for _ in range(50):
            if all(reader.call(p).ended for p in reader.protocols() if self._in_steps(reader, p, steps)):
                return
            await asyncio.sleep(0.2)

    @staticmethod
    def _in_steps(reader: StoreReader, protocol: str, steps: list[Step]) -> bool:
        return steps[0].started - 1 <= epoch_of(reader.call(protocol).unique_id)

    def _check(self, target: str, steps: list[Step], journeys: list[Journey]) -> None:
        """Count, per step and journey, the calls whose records show them going the journey's way."""
        self._astray = False

        def step_of(unique_id: str) -> Step | None:
            at = epoch_of(unique_id)
            return next((s for s in reversed(steps) if s.started - 1 <= at), None)

        for step in steps:
            step.ok, step.fallback = {}, 0
        cdr = self._cdr()
        for row in cdr:
            step = step_of(row["uniqueid"])
            if step is not None and row["dcontext"] == "sac-fallback":
                step.fallback += 1
        if target == "ceiling":
            names = {f"bench-{j.name}": j.name for j in journeys}
            for row in cdr:
                step, name = step_of(row["uniqueid"]), names.get(row["dcontext"])
                if step is None or name is None:
                    continue
                if row["dst"] == "s" and row["lastapp"] == "Hangup":
                    step.ok[name] = step.ok.get(name, 0) + 1
                elif row["dst"] == "wrong":
                    self._astray = True
            return
        reader = StoreReader(self.ivr.database)
        for protocol in reader.protocols():
            call = reader.call(protocol)
            step = step_of(call.unique_id)
            if step is None or not call.ended:
                continue
            way = [j for j in journeys if call.caller_id == phone.normalise(j.caller) and j.passes in call.path]
            if len(way) == 1 and call.path[-1] == "goodbye" and call.outcome == "ended":
                step.ok[way[0].name] = step.ok.get(way[0].name, 0) + 1
            else:
                self._astray = True


# ---------------------------------------------------------------- setup and report


@contextmanager
def private_asterisk(settings: Settings) -> Iterator[Instance]:
    """A private instance (named as the e2e ones, so a dead bench's is reaped too) with app_read loaded
    for the ceiling; stopped and removed at the end."""
    root = settings.asterisk_root
    reap_stale_instances(root)
    layout = conf.Layout.private(f"e2e-{os.getpid()}-capacity-{secrets.token_hex(2)}")
    instance = Instance(root, layout)
    modules = conf.render(
        settings, layout, asterisk_root.ami_secret(settings), asterisk_root.MOH_DIR, asterisk_root.modules_dir(root)
    )["modules.conf"]
    extra = {"modules.conf": modules + "\n; the bench's ceiling\nload = app_read.so\n"}
    try:
        asterisk_root.provision(settings, layout, extra=extra)
        instance.start()
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(instance.host_path(layout.etc).parent, ignore_errors=True)


@asynccontextmanager
async def ivr_serve(settings: Settings, directory: Path) -> AsyncIterator[IvrProcess]:
    directory.mkdir()
    process = IvrProcess(settings, directory)
    try:
        await asyncio.to_thread(process.seed)  # it runs an event loop of its own
        process.start()
        yield process
        process.stop()
    finally:
        process.kill()


def report(ramps: Sequence[Ramp], journeys: list[Journey], load_before: float, started: float) -> None:
    print()
    print(
        f"{os.cpu_count()} cores, load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after; "
        f"journeys in equal shares: " + ", ".join(f"{j.name} ({ramps[0].call_s[j.name]:.0f} s)" for j in journeys)
    )
    print(
        f"{'target':<8}{'calls/s':>8}{'offered':>8}{'done':>6}{'failed':>7}{'fallbk':>7}{'up':>5}"
        f"{'Asterisk CPU':>13}{'IVR CPU':>9}{'IVR/Ast':>8}"
    )
    for ramp in ramps:
        for s in ramp.steps:
            ivr_share = f"{100 * s.ivr_cpu_s / s.asterisk_cpu_s:.1f}%" if ramp.target == "ivr" and s.asterisk_cpu_s else "-"
            ivr_cpu = f"{100 * s.ivr_cpu_s / s.seconds:.1f}%" if ramp.target == "ivr" else "-"
            print(
                f"{ramp.target:<8}{s.rate:>8g}{s.offered:>8}{s.completed:>6}{s.failed:>7}{s.fallback:>7}"
                f"{s.concurrent:>5}{100 * s.asterisk_cpu_s / s.seconds:>12.1f}%{ivr_cpu:>9}{ivr_share:>8}"
            )
    by_target = {r.target: r for r in ramps}
    for ramp in ramps:
        best = ramp.sustained
        top = "the highest step offered" if len(ramp.clean) == len(ramp.steps) else "the last step before a failure"
        said = f"{best.rate:g} calls/s with {best.concurrent} calls up ({top})" if best else "none (the first step failed)"
        print(f"{ramp.target}: sustained with 0 failures: {said}; SIPp used {ramp.sipp_cpu_s:.1f} s of CPU")
    ivr, ceiling = by_target.get("ivr"), by_target.get("ceiling")
    if ivr and ceiling and ivr.sustained and ceiling.sustained:
        print(f"IVR / ceiling sustained calls/s: x{ivr.sustained.rate / ceiling.sustained.rate:.2f} (goal >= 0.9)")
    if ivr and ivr.clean:
        a, i = sum(s.asterisk_cpu_s for s in ivr.clean), sum(s.ivr_cpu_s for s in ivr.clean)
        calls = sum(s.offered for s in ivr.clean)
        print(
            f"IVR CPU / Asterisk CPU over the clean steps: {100 * i / a:.1f}% (goal <= 10%); per call offered: "
            f"IVR {1000 * i / calls:.0f} ms, Asterisk {1000 * a / calls:.0f} ms (the offer periods only)"
        )
    if ivr and ceiling and ceiling.clean:
        a = sum(s.asterisk_cpu_s for s in ceiling.clean) / sum(s.offered for s in ceiling.clean)
        print(f"ceiling: Asterisk {1000 * a:.0f} ms of CPU per call offered (the offer periods only)")
    print(f"bench took {time.time() - started:.0f} s")


async def main(rates: Sequence[float], step_s: float, max_minutes: float, targets: Sequence[str]) -> None:
    started, load_before = time.time(), os.getloadavg()[0]
    deadline = started + 60 * max_minutes
    settings = e2e_settings()
    with tempfile.TemporaryDirectory(prefix="sac-capacity-") as tmp:
        work = Path(tmp)
        async with AsyncExitStack() as stack:  # stopped in reverse: the IVR, then Asterisk
            instance = stack.enter_context(private_asterisk(settings))
            ivr = await stack.enter_async_context(ivr_serve(settings, work / "ivr"))
            journeys = journeys_of(ivr)
            scripted = Journeys(ivr)  # the flows the IVR published, timed against the built prompts
            scripts = {j.name: await scripted.script(j.caller, *j.inputs) for j in journeys}
            contexts: dict[str, tuple[str, str]] = {}
            ceiling_scripts: dict[str, sipp.CallScript] = {}
            for index, j in enumerate(journeys):
                number = CEILING_NUMBER.format(index=index + 1)
                stretches = (await walk(ivr, j.caller, list(j.inputs))).stretches
                contexts[number] = (j.name, ceiling_context(j.name, j.inputs, stretches, settings.agi.sound_prefix))
                ceiling_scripts[j.name] = dataclasses.replace(scripts[j.name], number=number)
            # The ceiling is written once the walks know what it plays, and read by a dialplan reload.
            local = instance.host_path(f"{instance.layout.etc}/extensions_local.conf")
            local.write_text(ceiling_extensions(contexts), encoding="utf-8")
            instance.command("dialplan reload")
            bench = Bench(settings, instance, ivr, work)
            ramps: list[Ramp] = []
            try:
                for target in targets:
                    chosen = scripts if target == "ivr" else ceiling_scripts
                    ramps.append(await bench.ramp(target, chosen, journeys, rates, step_s, deadline))
            finally:
                bench.kill_sipp()
            report(ramps, journeys, load_before, started)


def _run(coroutine: object) -> None:
    """asyncio.run, with SIGTERM treated as Ctrl-C: the main task is cancelled and every finally runs."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await coroutine  # type: ignore[misc]

    asyncio.run(guarded())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1, 2, 3, 4], help="calls/s offered per step")
    parser.add_argument("--step", type=float, default=30.0, help="seconds each step offers its rate")
    parser.add_argument("--max-minutes", type=float, default=MAX_MINUTES, help="bound on the whole run (at most 10)")
    parser.add_argument("--only", choices=("ivr", "ceiling"), help="ramp one target only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("capacity_calls: run as root (Asterisk runs chrooted)")
    _run(main(args.rates, args.step, min(args.max_minutes, MAX_MINUTES), [args.only] if args.only else ["ivr", "ceiling"]))
