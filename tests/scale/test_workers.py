"""`ivr serve --workers 2` on one SQLite store: both workers take calls on the one FastAGI port, `ivr live`'s
socket shows the unit, a publish reloads every worker, a killed worker is replaced, SIGTERM drains the calls
in progress on every worker and the supervisor exits 0; every call's protocol comes from the store's
sequence, none twice, and every call's row and visits reach the store."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
from collections import Counter
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bench.asterisk_side import Caller, ticket_status_then_agent
from ivr.ami.live import watch_snapshots
from ivr.config import Settings
from ivr.store.db import Store
from ivr.store.models import Call, NodeVisit

from .agi_caller import place_call
from .ivr_serve import REPO, IvrServe, ivr_command

WORKERS = 2
CALLS = 40  # per round; two rounds, before and after a worker is killed
FALLBACK_FIRST = Settings.model_fields["protocol_fallback_range"].default[0]
_WORKER_STARTED = r"worker (\d+) started \(pid (\d+)\)"
_METRICS = r"metrics at (http://\S+/metrics)"


async def calls_served(url: str) -> float:
    """The calls a worker ended (its own /metrics registry)."""
    async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as reply:
        text = await reply.text()
    return sum(float(m[1]) for m in re.finditer(r"^sac_ivr_calls_ended_total\{[^}]*\} (\S+)$", text, re.M))


async def seeded_unit(tmp_path: Path) -> IvrServe:
    """`ivr serve --workers 2` (not started) over a demo-seeded SQLite store in `tmp_path`."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"
    await ivr_command("db", "seed", database_url=url, var_dir=tmp_path / "var")
    return IvrServe(url, tmp_path / "var", workers=WORKERS)


async def test_two_workers_share_the_port_reload_restart_and_drain(tmp_path: Path) -> None:
    unit = await seeded_unit(tmp_path)
    url, var_dir = unit.database_url, unit.var_dir
    script = ticket_status_then_agent()
    callers: list[Caller] = []
    try:
        await unit.start()
        await unit.logged(r"FastAGI listening on", WORKERS)
        metrics = [m[1] for m in await unit.logged(_METRICS, WORKERS)]
        # The supervisor finds a worker's live socket within its retry interval of the worker listening.
        async with asyncio.timeout(5):
            async for snapshot in watch_snapshots(var_dir / "live.sock", 5):
                if snapshot["workers"] == WORKERS:
                    break

        callers += [Caller(n, script) for n in range(1, CALLS + 1)]
        await asyncio.gather(*(place_call(unit.port, c) for c in callers))
        served = [await calls_served(u) for u in metrics]
        assert sum(served) == CALLS and all(served), f"calls per worker: {served}"  # the kernel spread them

        # The unit's snapshot follows its workers' within a telling interval: the first with every call over.
        async with asyncio.timeout(5):
            async for snapshot in watch_snapshots(var_dir / "live.sock", 5):
                if snapshot["calls"] == []:
                    break
        assert snapshot["workers"] == WORKERS, snapshot

        draft = tmp_path / "draft"
        shutil.copytree(REPO / "flows", draft)
        with (draft / "sac.yaml").open("a") as sac:
            sac.write("# a new release\n")
        published = await ivr_command("flow", "publish", str(draft), database_url=url, var_dir=var_dir)
        assert "asked ivr serve" in published, published
        version = re.search(r"as version (\w+)", published)
        assert version, published
        await unit.logged(rf"serving flows version {version[1]}", WORKERS)  # each worker, once

        victim = int((await unit.logged(_WORKER_STARTED))[0][2])
        os.kill(victim, signal.SIGKILL)
        await unit.logged(r"worker 0 \(pid \d+\) exited with status -9; restarting")
        await unit.logged(_WORKER_STARTED, WORKERS + 1)
        await unit.logged(r"FastAGI listening on", WORKERS + 1)

        second = [Caller(n, script) for n in range(CALLS + 1, 2 * CALLS + 1)]
        callers += second
        await asyncio.gather(*(place_call(unit.port, c) for c in second))
    finally:
        status = await unit.stop()
    assert status == 0, unit.tail()
    problems = [line for line in unit.problems() if "exited with status -9; restarting" not in line]  # the kill
    assert problems == [], "\n".join(problems)

    protocols = {c.variables["IVR_PROTOCOL"]: c for c in callers}
    assert len(protocols) == len(callers), Counter(c.variables["IVR_PROTOCOL"] for c in callers).most_common(3)
    assert all(c.queued == "technical" for c in callers)
    assert all(int(p[4:11]) < FALLBACK_FIRST for p in protocols), "a protocol from the fallback range"
    store = Store(url)
    try:
        rows, visits = await store.read(
            lambda s: (
                {c.protocol: c for c in s.scalars(select(Call))},
                dict(s.execute(select(NodeVisit.call_protocol, func.count()).group_by(NodeVisit.call_protocol)).all()),
            )
        )
    finally:
        await store.aclose()
    assert rows.keys() == protocols.keys()
    for protocol, caller in protocols.items():
        assert rows[protocol].ended_at is not None and rows[protocol].outcome, protocol
        assert visits.get(protocol) == len(caller.variables["IVR_PATH"].split(">")), protocol


async def test_sigterm_drains_every_workers_calls_then_the_supervisor_exits_0(tmp_path: Path) -> None:
    unit = await seeded_unit(tmp_path)
    callers = [Caller(n, ticket_status_then_agent()) for n in range(1, 9)]
    all_at_queue, talked = asyncio.Event(), asyncio.Event()

    async def agent_talking() -> None:
        at_queue.append(1)
        if len(at_queue) == len(callers):
            all_at_queue.set()
        await talked.wait()

    at_queue: list[int] = []
    try:
        await unit.start()
        await unit.logged(r"FastAGI listening on", WORKERS)
        calls = asyncio.gather(*(place_call(unit.port, c, at_queue=agent_talking) for c in callers))
        try:
            await asyncio.wait_for(all_at_queue.wait(), 30)
            unit.send_signal(signal.SIGTERM)
            await unit.logged(r"stopping: no new calls; draining", WORKERS)  # each worker, its calls still on
        finally:
            talked.set()
            await calls
    finally:
        status = await unit.stop()
    assert status == 0, unit.tail()  # no call was cut by the drain bound
    assert all(c.queued == "technical" and c.hung_up for c in callers)
    store = Store(unit.database_url)
    try:
        ended = await store.read(lambda s: s.scalar(select(func.count()).where(Call.ended_at.is_not(None))))
    finally:
        await store.aclose()
    assert ended == len(callers)
