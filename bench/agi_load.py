"""FastAGI load: N concurrent calls through our AGI server, beside a raw-asyncio floor.

The load generator plays Asterisk's side over loopback: it sends the ``agi_*`` block, then answers
each command the way res_agi answers a real call on the sac flow (ANSWER, the protocol announcement,
the main menu with a key pressed, a sub-menu, WAIT FOR DIGIT, the queue, goodbye, HANGUP). Every
call is held at ``EXEC Queue`` until all N calls have reached it, so N calls are truly in progress at
once; the server process's RSS is sampled then.

Two servers run in their own processes, one at a time, on the same load:

* ``ivr``: ``ivr.agi.server.AgiServer`` + ``AgiChannel`` (wire parsing, quoting, timeouts, hang-up
  handling) with a flow-less handler that issues the sac call's commands through the `Channel` API.
  (The LEAD's ``ivr.app`` needs a database and flows; this bench measures the AGI layer alone.)
* ``floor``: the least an asyncio AGI responder can do: read the block, write the same command lines,
  read one line per answer. No parsing, no timeouts, no safety.

Run from the repo root:  .venv/bin/python bench/agi_load.py [--calls 100 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Every run is bounded: a wedged server fails the bench instead of hanging it.
RUN_TIMEOUT_S = 180.0
PROTOCOL = "202600000017"
HEADER = (
    "agi_network: yes\nagi_network_script: sac?lang=pt_BR\nagi_request: agi://127.0.0.1/sac?lang=pt_BR\n"
    "agi_channel: PJSIP/carrier-{n:08x}\nagi_language: pt_BR\nagi_type: PJSIP\nagi_uniqueid: 1764070000.{n}\n"
    "agi_version: 22.6.0\nagi_callerid: 1133334444\nagi_calleridname: unknown\nagi_dnid: 30033336\n"
    "agi_context: sac-inbound\nagi_extension: 30033336\nagi_priority: 3\nagi_enhanced: 0.0\n\n"
)
KEYS = '"0123456789*#"'


def sac_command_lines() -> list[str]:
    """The command lines of one sac call, as our AgiChannel writes them (the floor writes these too)."""
    lines = ['GET VARIABLE "CHANNEL(linkedid)"', "ANSWER", f'SET VARIABLE "IVR_PROTOCOL" "{PROTOCOL}"']
    lines.append('STREAM FILE "sac/pt_BR/welcome" ""')
    lines.append('STREAM FILE "sac/pt_BR/your_protocol_is" ""')
    lines += [f'STREAM FILE "sac/pt_BR/digit/{d}" ""' for d in PROTOCOL]
    lines.append(f'STREAM FILE "sac/pt_BR/main_menu" {KEYS}')  # the caller presses 1
    lines.append(f'STREAM FILE "sac/pt_BR/technical_menu" {KEYS}')
    lines.append('WAIT FOR DIGIT "5000"')  # the caller presses 2
    lines.append(f'SET VARIABLE "IVR_PROTOCOL" "{PROTOCOL}"')
    lines.append('EXEC "Queue" "technical,,,,120"')
    lines.append('GET VARIABLE "QUEUESTATUS"')
    lines.append('STREAM FILE "sac/pt_BR/goodbye" ""')
    lines.append("HANGUP")
    return lines


async def sac_call(channel: object) -> None:
    """The same call through the Channel API (the ivr server's handler)."""
    from ivr.engine.channel import Channel

    assert isinstance(channel, Channel)
    await channel.answer()
    await channel.set_variable("IVR_PROTOCOL", PROTOCOL)
    await channel.play(["welcome", "your_protocol_is", *(f"digit/{d}" for d in PROTOCOL)], interruptible=False)
    if await channel.play(["main_menu"]) == "1" and not await channel.play(["technical_menu"]):
        await channel.read_digits(max_digits=1, first_timeout_s=5, inter_digit_timeout_s=3)
    await channel.queue("technical", context={"protocol": PROTOCOL}, timeout_s=120)
    await channel.play(["goodbye"], interruptible=False)
    await channel.hangup()


# ---------------------------------------------------------------- servers (run in a child process)


async def serve_ivr() -> None:
    from ivr.agi.server import AgiServer
    from ivr.config import load_settings

    async def handler(channel: object, flow: str) -> None:
        await sac_call(channel)

    server = AgiServer(handler, load_settings(), host="127.0.0.1", port=0)
    await server.start()
    await _announce_and_wait(server.port)


async def serve_floor() -> None:
    lines = [f"{line}\n".encode() for line in sac_command_lines()]

    async def call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        for line in lines:
            writer.write(line)
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(call, "127.0.0.1", 0, backlog=4096)
    await _announce_and_wait(server.sockets[0].getsockname()[1])


async def _announce_and_wait(port: int) -> None:
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


# ---------------------------------------------------------------- Asterisk's side (the parent)


def answer_for(line: str) -> str:
    """res_agi's answer to one command of the sac call."""
    if line.startswith('GET VARIABLE "CHANNEL'):
        return "200 result=1 (1764070000.1)"
    if line.startswith('GET VARIABLE "QUEUESTATUS"'):
        return "200 result=1 (TIMEOUT)"
    if line.startswith("STREAM FILE") and "main_menu" in line:
        return "200 result=49 endpos=4000"
    if line.startswith("STREAM FILE"):
        return "200 result=0 endpos=8000"
    if line.startswith("WAIT FOR DIGIT"):
        return "200 result=50"
    if line.startswith(("SET VARIABLE", "HANGUP")):
        return "200 result=1"
    return "200 result=0"  # ANSWER, EXEC Queue


@dataclass
class Run:
    server: str
    calls: int
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    rss_idle_kib: int = 0
    rss_busy_kib: int = 0

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.elapsed_s

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def kib_per_call(self) -> float:
        return (self.rss_busy_kib - self.rss_idle_kib) / self.calls


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def one_call(port: int, n: int, run: Run, expected: list[str], at_queue: asyncio.Queue[int], release: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADER.format(n=n).encode())
    answered_at = time.perf_counter()
    for want in expected:
        line = (await reader.readline()).decode().rstrip("\n")
        run.latencies_s.append(time.perf_counter() - answered_at)
        if line != want:
            raise AssertionError(f"call {n}: expected {want!r}, got {line!r}")
        if line.startswith('EXEC "Queue"'):
            at_queue.put_nowait(n)
            await release.wait()
        writer.write(f"{answer_for(line)}\n".encode())
        answered_at = time.perf_counter()
    if await reader.read() != b"":
        raise AssertionError(f"call {n}: bytes after HANGUP")
    writer.close()


async def load(server: str, calls: int) -> Run:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", server, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), 30))
        run = Run(server, calls, rss_idle_kib=rss_kib(child.pid))
        at_queue: asyncio.Queue[int] = asyncio.Queue()
        release = asyncio.Event()
        expected = sac_command_lines()
        started = time.perf_counter()
        async with asyncio.timeout(RUN_TIMEOUT_S):
            tasks = [asyncio.create_task(one_call(port, n, run, expected, at_queue, release)) for n in range(calls)]
            for _ in range(calls):
                await at_queue.get()
            run.rss_busy_kib = rss_kib(child.pid)  # all N calls are in progress right now
            release.set()
            await asyncio.gather(*tasks)
        run.elapsed_s = time.perf_counter() - started
        return run
    finally:
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)


def report(runs: Sequence[Run]) -> None:
    per_call = len(sac_command_lines())
    print(f"handler: flow-less sac call through the Channel API ({per_call} AGI commands per call); ivr.app not used")
    print(f"{'server':<7}{'calls':>7}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'KiB/call':>10}")
    for r in runs:
        print(f"{r.server:<7}{r.calls:>7}{r.calls_per_s:>10.0f}{r.pct_ms(0.50):>9.2f}{r.pct_ms(0.99):>9.2f}{r.kib_per_call:>10.1f}")
    for calls in sorted({r.calls for r in runs}):
        ivr = next(r for r in runs if r.server == "ivr" and r.calls == calls)
        floor = next(r for r in runs if r.server == "floor" and r.calls == calls)
        print(
            f"ivr/floor at {calls}: calls/s x{ivr.calls_per_s / floor.calls_per_s:.2f}, "
            f"p50 x{ivr.pct_ms(0.5) / floor.pct_ms(0.5):.2f}, p99 x{ivr.pct_ms(0.99) / floor.pct_ms(0.99):.2f}, "
            f"memory x{ivr.kib_per_call / max(floor.kib_per_call, 0.1):.2f}"
        )


async def main(calls: Sequence[int], rounds: int) -> None:
    runs = []
    for n in calls:
        by_server: dict[str, list[Run]] = {"floor": [], "ivr": []}
        for _ in range(rounds):  # alternate the two servers so drift hits both alike
            for server, done in by_server.items():
                done.append(await load(server, n))
        for done in by_server.values():  # the median round by calls/s
            runs.append(sorted(done, key=lambda r: r.calls_per_s)[len(done) // 2])
    report(runs)
    print(f"(median of {rounds} rounds per row)")
    print(f"(command latency = Asterisk's answer written -> next command read; CPU: {os.cpu_count()} cores; loopback only)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 1000], help="concurrent calls per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per row; the median is shown")
    parser.add_argument("--serve", choices=("ivr", "floor"), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_ivr() if args.serve == "ivr" else serve_floor())
    else:
        asyncio.run(main(args.calls, args.rounds))
