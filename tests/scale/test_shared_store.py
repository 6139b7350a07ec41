"""Two `ivr serve` units on one database (PostgreSQL, the scale path; and one SQLite file) take calls at
once: every call gets its own valid protocol number from the shared sequence, and every call's row and
node visits reach the store.

Both units start together on an empty database (each migrates it on start), then `ivr db seed` adds
the demo accounts, then CALLS_PER_UNIT calls arrive at each unit at the same moment. Each call is a
known caller who asks for a ticket's status, keys its number, and asks for a person (Asterisk's side
scripted as in the bench). Numbers may have gaps (a late allocation is never reused), never duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import asyncpg
from sqlalchemy import func, select

from bench.asterisk_side import Caller, ticket_status_then_agent, unique_id
from ivr.config import Settings
from ivr.protocol_number import NumberKind, is_valid_protocol_or_ticket, kind_of
from ivr.store.db import Store
from ivr.store.models import Call, NodeVisit, Sequence
from ivr.store.sequences import call_protocol_sequence
from tests.postgres import PostgresServer

from .agi_caller import place_call
from .conftest import NewDatabase
from .ivr_serve import START_TIMEOUT_S, IvrServe, ivr_command
from .migrations import migrate, revisions

CALLS_PER_UNIT = 50
UNITS = 2
UPGRADING_UNITS = 4
FALLBACK_FIRST = Settings.model_fields["protocol_fallback_range"].default[0]


async def test_units_starting_together_migrate_one_at_a_time(postgres: PostgresServer, tmp_path: Path) -> None:
    """Every unit upgrades the schema when it starts. Units held at the same point of an upgrade (the test
    locks the version table) and then let go must migrate one at a time: before the advisory lock in
    ivr.store.migrate, all but one failed on the first one's CREATE TABLE."""
    url = await postgres.fresh_database()
    store = Store(url)
    try:
        await migrate(store, revisions()[0])
    finally:
        await store.aclose()
    database = url.rpartition("/")[2]
    holder, watcher = [
        await asyncpg.connect(host="127.0.0.1", port=postgres.port, user="postgres", database=database)
        for _ in range(2)
    ]
    units: list[asyncio.Task[str]] = []
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
            units += [
                asyncio.create_task(ivr_command("db", "upgrade", database_url=url, var_dir=tmp_path / f"unit{n}"))
                for n in range(UPGRADING_UNITS)
            ]
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'"
            async with asyncio.timeout(START_TIMEOUT_S):
                while await watcher.fetchval(waiting, database) < UPGRADING_UNITS:
                    await asyncio.sleep(0.05)  # bounded by the timeout; a lock wait sends no event
    finally:
        await watcher.close()
        await holder.close()
        outputs = await asyncio.gather(*units, return_exceptions=True)
    failures = [str(output) for output in outputs if isinstance(output, BaseException)]
    assert not failures, f"{len(failures)} of {UPGRADING_UNITS} units failed; the first: {failures[0]}"
    assert {str(output).strip().splitlines()[-1] for output in outputs} == {f"database at revision {revisions()[-1]}"}


async def test_two_units_share_one_store(new_database: NewDatabase, tmp_path: Path) -> None:
    url = await new_database()
    units = [IvrServe(url, tmp_path / f"unit{n}") for n in range(1, UNITS + 1)]
    async with contextlib.AsyncExitStack() as stack:
        for unit in units:
            stack.push_async_callback(unit.stop)
        await asyncio.gather(*(unit.start() for unit in units))  # both migrate the empty database at once
        await ivr_command("db", "seed", database_url=url, var_dir=tmp_path / "seed")
        callers = [
            [Caller(index * CALLS_PER_UNIT + n, ticket_status_then_agent()) for n in range(1, CALLS_PER_UNIT + 1)]
            for index in range(UNITS)
        ]
        await asyncio.gather(*(place_call(unit.port, c) for unit, cs in zip(units, callers, strict=True) for c in cs))
        for unit in units:  # drained, and the event buffers flushed to the store
            assert await unit.stop() == 0, unit.tail()
            assert unit.problems() == [], "\n".join(unit.problems())

    everyone = [c for cs in callers for c in cs]
    for caller in everyone:
        assert caller.queued == "technical", (caller.n, caller.variables)  # the end of its script
    protocols = {caller.variables["IVR_PROTOCOL"]: caller for caller in everyone}
    assert len(protocols) == len(everyone), Counter(c.variables["IVR_PROTOCOL"] for c in everyone).most_common(3)
    for protocol in protocols:
        assert is_valid_protocol_or_ticket(protocol) and kind_of(protocol) is NumberKind.CALL_PROTOCOL, protocol
        assert int(protocol[4:11]) < FALLBACK_FIRST, f"{protocol}: from the fallback range, not the store"

    [year] = {int(protocol[:4]) for protocol in protocols}  # (a run across New Year's midnight fails here)
    store = Store(url)
    try:
        rows, visits, issued = await store.read(
            lambda s: (
                {c.protocol: c for c in s.scalars(select(Call))},
                dict(s.execute(select(NodeVisit.call_protocol, func.count()).group_by(NodeVisit.call_protocol)).all()),
                s.get(Sequence, call_protocol_sequence(year)),
            )
        )
    finally:
        await store.aclose()
    assert rows.keys() == protocols.keys()
    for protocol, caller in protocols.items():
        row = rows[protocol]
        assert (row.unique_id, row.flow, row.ended_at is not None) == (unique_id(caller.n), "sac", True), protocol
        assert row.outcome, protocol
        assert visits.get(protocol) == len(caller.variables["IVR_PATH"].split(">")), protocol
    assert issued is not None and issued.value >= max(int(p[4:11]) for p in protocols)
