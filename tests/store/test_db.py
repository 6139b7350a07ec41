"""The SQLite setup must not lose updates under asyncio, and outages must surface as StoreUnavailable."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from ivr.cli.db import _open
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import Sequence
from ivr.store.pointread import point_read

from .conftest import sqlite_url


def _read_then_write(session: Session) -> None:
    row = session.scalars(select(Sequence).where(Sequence.name == "counter")).one()
    session.execute(text("SELECT count(*) FROM customers"))  # more reading between read and write
    row.value = row.value + 1


async def test_concurrent_read_then_write_transactions_lose_no_update(sqlite_store: Store) -> None:
    await sqlite_store.write(lambda s: s.add(Sequence(name="counter", value=0)))
    await asyncio.gather(*(sqlite_store.write(_read_then_write) for _ in range(20)))
    assert await sqlite_store.read(lambda s: s.get_one(Sequence, "counter").value) == 20


async def test_two_engines_on_one_file_lose_no_update(sqlite_store: Store) -> None:
    other = Store(sqlite_store.url, busy_timeout_s=10)
    try:
        await sqlite_store.write(lambda s: s.add(Sequence(name="counter", value=0)))
        await asyncio.gather(*(db.write(_read_then_write) for _ in range(10) for db in (sqlite_store, other)))
        assert await other.read(lambda s: s.get_one(Sequence, "counter").value) == 20
    finally:
        await other.aclose()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_store: Store) -> None:
    assert await sqlite_store.read(lambda s: s.execute(text("PRAGMA journal_mode")).scalar()) == "wal"
    assert await sqlite_store.read(lambda s: s.execute(text("PRAGMA busy_timeout")).scalar()) == 10_000


@pytest.mark.parametrize("way", ["session", "connection"])
async def test_a_durable_write_commits_with_synchronous_full_and_the_others_with_normal(
    sqlite_store: Store, way: str
) -> None:
    def synchronous(db: Session | Connection) -> int:
        return int(db.execute(text("PRAGMA synchronous")).scalar_one())

    write = sqlite_store.write if way == "session" else sqlite_store.run_with_connection
    for _ in range(3):  # whichever connection comes (pooled, or the one kept for Core writes), it is set anew
        assert await write(synchronous, durable=True) == 2  # FULL: the WAL is synced at commit
        assert await write(synchronous) == 1  # NORMAL
        assert await sqlite_store.write_on_loop(synchronous) == 1


@pytest.mark.parametrize("way", ["in a thread", "on the loop"])
async def test_the_connection_kept_for_core_writes_outlives_a_failed_write_and_a_locked_database(
    tmp_path: Path, way: str
) -> None:
    database = tmp_path / "ivr.sqlite3"
    store = Store(sqlite_url(database), busy_timeout_s=0.1)
    write = store.run_with_connection if way == "in a thread" else store.write_on_loop
    try:
        await store.run_with_connection(lambda c: c.execute(text("CREATE TABLE counter (n INTEGER)")))

        def insert_then_fail(connection: Connection) -> None:
            connection.execute(text("INSERT INTO counter VALUES (1)"))
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await write(insert_then_fail)
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
        with pytest.raises(StoreUnavailable):
            await write(lambda c: c.execute(text("INSERT INTO counter VALUES (2)")))
        with pytest.raises(StoreUnavailable):  # an ORM write too (BEGIN IMMEDIATE is ours, in an event)
            await store.write(lambda s: s.execute(text("INSERT INTO counter VALUES (2)")))
        other.execute("ROLLBACK")
        other.close()
        await write(lambda c: c.execute(text("INSERT INTO counter VALUES (3)")))
        rows = await store.lookup(lambda c: c.execute(text("SELECT n FROM counter")).scalars().all())
        assert rows == [3]  # the failed write left nothing, the locked one nothing, the next one its row
    finally:
        await store.aclose()


async def test_a_write_on_the_loop_runs_there_and_waits_for_another_process_in_a_thread(sqlite_store: Store) -> None:
    """Unlocked, the write runs on the loop's thread (no hop) on a connection that leaves checkpoints (an
    fsync) to the writes in threads; while another process holds the write lock, the loop goes on turning
    and the write lands once the lock is released, not lost."""

    def insert(connection: Connection) -> tuple[str, int]:
        connection.execute(text("INSERT INTO sequences (name, value) VALUES ('n', 1)"))
        return threading.current_thread().name, int(
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
        )

    assert await sqlite_store.write_on_loop(insert) == (threading.current_thread().name, 0)
    blocker = sqlite3.connect(sqlite_store.url.split("///", 1)[1], isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        write = asyncio.ensure_future(
            sqlite_store.write_on_loop(lambda c: c.execute(text("UPDATE sequences SET value = 2")))
        )
        await asyncio.sleep(0.2)  # the loop turns meanwhile: the write waits in a thread
        assert not write.done()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await asyncio.wait_for(write, 5)
    assert await sqlite_store.lookup(lambda c: c.execute(text("SELECT value FROM sequences")).scalar_one()) == 2


async def test_writes_on_the_loop_queued_behind_a_write_in_a_thread_land_together_once_it_ends(
    sqlite_store: Store,
) -> None:
    """A burst's messages wait for the write turn while a protocol is written in a thread: once it ends they
    all land within a few turns of the loop, in the order they came, a transaction each (queued in the lock
    one by one, each took a turn of the loop: hundreds behind one protocol waited over a second)."""
    release = threading.Event()
    order: list[str] = []

    def held(connection: Connection) -> None:
        release.wait(5)
        order.append("in a thread")

    def on_loop(n: int) -> Callable[[Connection], None]:
        def write(connection: Connection) -> None:
            connection.execute(text(f"INSERT INTO sequences (name, value) VALUES ('loop {n}', {n})"))
            order.append(f"loop {n}")

        return write

    first = asyncio.ensure_future(sqlite_store.run_with_connection(held, durable=False))
    await asyncio.sleep(0.05)  # it holds the turn, in its thread
    queued = [asyncio.ensure_future(sqlite_store.write_on_loop(on_loop(n))) for n in range(50)]
    await asyncio.sleep(0)
    queued[7].cancel()  # its caller went away before its turn came
    release.set()
    await asyncio.wait_for(first, 5)
    turns = 0
    while not all(write.done() for write in queued) and turns < 100:
        await asyncio.sleep(0)
        turns += 1
    assert turns <= 5
    assert order == ["in a thread", *(f"loop {n}" for n in range(50) if n != 7)]
    count = select(func.count()).select_from(Sequence).where(Sequence.name.like("loop %"))
    assert await sqlite_store.lookup(lambda c: c.execute(count).scalar_one()) == 49


@pytest.mark.parametrize("cancelled", ["before it ran", "waiting for the lock"])
async def test_writes_on_the_loop_waiting_for_a_turn_that_never_comes_are_cancelled_not_left_hanging(
    sqlite_store: Store, cancelled: str
) -> None:
    """The loop closing cancels the queued writes' turn: their callers are cancelled too, and a write that
    comes afterwards still gets its turn."""
    release = threading.Event()
    first = asyncio.ensure_future(sqlite_store.run_with_connection(lambda c: release.wait(5), durable=False))
    await asyncio.sleep(0.05)
    insert = text("INSERT INTO sequences (name, value) VALUES ('n', 1)")
    waiting = asyncio.ensure_future(sqlite_store.write_on_loop(lambda c: c.execute(insert)))
    await asyncio.sleep(0 if cancelled == "before it ran" else 0.05)
    turns = [t for t in asyncio.all_tasks() if t.get_name() == "store-loop-writes"]
    assert len(turns) == 1
    turns[0].cancel()
    await asyncio.wait({waiting}, timeout=1)
    assert waiting.cancelled()
    later = asyncio.ensure_future(sqlite_store.write_on_loop(lambda c: c.execute(insert)))
    release.set()
    await asyncio.wait_for(asyncio.gather(first, later), 5)
    count = select(func.count()).select_from(Sequence).where(Sequence.name == "n")
    assert await sqlite_store.lookup(lambda c: c.execute(count).scalar_one()) == 1


async def test_the_database_file_and_its_wal_are_0600_and_ivr_db_makes_its_directory_0700(tmp_path: Path) -> None:
    umask = os.umask(0o022)  # a usual umask: without care, 0644 and 0755
    directory = tmp_path / "var" / "db"
    store = _open(sqlite_url(directory / "ivr.sqlite3"))
    try:
        await store.write(lambda s: s.execute(text("CREATE TABLE t (x INTEGER)")))
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
        for name in ("ivr.sqlite3", "ivr.sqlite3-wal", "ivr.sqlite3-shm"):
            assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    finally:
        os.umask(umask)
        await store.aclose()


async def test_an_existing_database_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "ivr.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    store = Store(sqlite_url(database))
    await store.aclose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


async def test_a_database_in_use_is_never_opened_outside_sqlite(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing a descriptor drops every POSIX lock the process holds on the file: SQLite's locks included.
    database = Path(sqlite_store.url.split("///", 1)[1])
    opened: list[str] = []
    real_open = os.open

    def watched(path: Any, *args: Any, **kwargs: Any) -> int:
        descriptor = real_open(path, *args, **kwargs)
        opened.append(str(path))  # a descriptor the process will close
        return descriptor

    monkeypatch.setattr(os, "open", watched)
    other = Store(sqlite_store.url)  # a second store on the same file in the same process (ivr serve has two)
    await other.aclose()
    assert str(database) not in opened


async def test_a_failed_write_is_rolled_back(store: Store) -> None:
    def add_then_fail(session: Session) -> None:
        session.add(Sequence(name="half", value=1))
        session.flush()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.write(add_then_fail)
    assert await store.read(lambda s: s.get(Sequence, "half")) is None


async def test_unreachable_store_raises_store_unavailable(tmp_path: Path) -> None:
    down = Store(sqlite_url(tmp_path / "missing-dir" / "ivr.sqlite3"))
    try:
        with pytest.raises(StoreUnavailable):
            await down.read(lambda s: s.execute(text("SELECT 1")).scalar())
        with pytest.raises(StoreUnavailable):
            await down.write(lambda s: s.execute(text("SELECT 1")).scalar())
    finally:
        await down.aclose()


def test_in_memory_sqlite_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        Store("sqlite+aiosqlite://")


async def test_reads_are_not_kept_waiting_by_writers_queued_behind_another_process(sqlite_store: Store) -> None:
    await sqlite_store.write(lambda s: s.add(Sequence(name="counter", value=0)))
    database = sqlite_store.url.split("///", 1)[1]
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    writes = [asyncio.ensure_future(sqlite_store.write(_read_then_write)) for _ in range(40)]  # > the pool
    try:
        # The writers queue in-process, holding no pooled connection: a read still gets one at once.
        value = await asyncio.wait_for(sqlite_store.read(lambda s: s.get_one(Sequence, "counter").value), 5)
        assert value == 0 and not any(w.done() for w in writes)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await asyncio.wait_for(asyncio.gather(*writes), 20)
    assert await sqlite_store.read(lambda s: s.get_one(Sequence, "counter").value) == 40


def _counter(conn: Connection) -> int:
    return int(conn.execute(select(Sequence.value).where(Sequence.name == "counter")).scalar_one())


async def test_a_lookup_sees_each_write_committed_before_it(sqlite_store: Store) -> None:
    await sqlite_store.write(lambda s: s.add(Sequence(name="counter", value=0)))
    for expected in range(1, 4):  # the lookup's connection never keeps an old snapshot open
        await sqlite_store.write(_read_then_write)
        assert await sqlite_store.lookup(_counter) == expected


#: Built once, as the call path's reads are (`point_read` keeps a plan per statement).
_COUNTER = select(Sequence.value).where(Sequence.name == "counter")


def _counter_point_read(conn: Connection) -> int:
    return int(point_read(conn, _COUNTER).scalar_one())


@pytest.mark.parametrize("read", [_counter, _counter_point_read], ids=["sqlalchemy", "point read"])
async def test_a_lookup_on_a_database_another_process_holds_waits_off_the_loop(
    sqlite_store: Store, read: Callable[[Connection], int]
) -> None:
    blocker = sqlite3.connect(sqlite_store.url.split("///", 1)[1], isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")  # under WAL, the one way to keep readers out
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("INSERT INTO sequences (name, value) VALUES ('counter', 7)")
    blocker.execute("COMMIT")  # the lock is kept until the connection closes
    try:
        lookup = asyncio.ensure_future(sqlite_store.lookup(read))
        await asyncio.sleep(0.2)  # the loop turns meanwhile: the lookup waits in a thread, not on the loop
        assert not lookup.done()
    finally:
        blocker.close()
    assert await asyncio.wait_for(lookup, 5) == 7
