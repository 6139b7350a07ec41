"""The store's engine and its ways in: `Store.read(fn)` and `Store.write(fn)`, and `Store.lookup(fn)` for
a call's point reads.

Each takes a *synchronous* function (of an ORM `Session`; of a `Connection` for lookups) and runs it inside
one transaction, so no caller code can await something else (a prompt, a back-end) while a transaction is
open: the write lock is held only for the database work itself.

SQLite (the default) needs care under asyncio. pysqlite's implicit deferred ``BEGIN`` lets two
connections read the same row and both write it (a lost update; 20 concurrent read-then-write
transactions left a counter at 1). Here the driver's own transaction handling is off, writes start
with ``BEGIN IMMEDIATE`` (the write lock is taken before the first read), the journal is WAL (readers
never block the writer) and a busy timeout makes a writer of another process wait instead of failing.
SQLite has one writer at a time anyway, so writers of this process queue on an `asyncio.Lock` before
taking a connection: waiting in SQLite's busy handler instead would sleep (leaving the lock idle) while
holding connections that reads (the caller-ID lookup) need. Each transaction runs whole in one of a
few worker threads (plain pysqlite): one hop from the event loop per transaction, where aiosqlite made
one per statement, fetch and BEGIN (a read cost ~4x the event loop's time, which a burst of calls
cannot spare). The call's own point reads (`Store.lookup`: Core statements on a `Connection`, no ORM
session) make no hop at all: on the event loop's thread, on a connection kept open for them, a SQLite
read of a few indexed rows costs ~30 µs of CPU, where a session costs ~80 µs more and handing the read
to a thread and back ~250 µs more (waking the thread, the future, the loop's self-pipe, the GIL twice).
A database too busy to read at once (SQLITE_BUSY, rare under WAL) sends the read to a thread, which
waits out the busy timeout there. Core writes that need no fsync (`Store.write_on_loop`: outbox messages,
the batches of call records) go the same way, in the write turn, on a connection of their own that never
checkpoints: the hop to a thread and back was most of a message's cost, and a batch written in a thread
waited for the GIL behind a busy loop until the records overflowed their buffer (a burst of 1,000 calls:
4.9 -> 3.5-3.7 ms of the IVR's CPU a call, no record lost). Writes that sync the disk (the protocol sequence)
and the ORM's stay in threads.
PostgreSQL URLs (asyncpg) run on SQLAlchemy's asyncio engine; the SQL is kept portable.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from ivr.config import Settings

T = TypeVar("T")

_WRITE = "ivr_write"  # execution option marking a connection that begins a write transaction
_DURABLE = "ivr_durable"  # ... whose commit must survive a power cut (synchronous=FULL)
SQLITE_THREADS = 8  # worker threads (and pooled connections) of a SQLite store
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # primary result codes: the database, or a table, is locked


class StoreUnavailable(ConnectionError):
    """The database cannot be reached or is locked past the busy timeout (an outage, not a bug)."""


class _GaveUp(Exception):
    """The caller of a write was cancelled before its transaction committed: it is rolled back."""


class Store:
    """A database. `write(fn, durable=True)` is for the transactions a power cut must not undo once
    committed (the protocol sequence): on SQLite they commit with ``synchronous=FULL``, where the others
    keep WAL's ``NORMAL`` (durable against a crash of the process, not of the machine). PostgreSQL's
    commits are durable already (``synchronous_commit`` on)."""

    def __init__(self, url: str, *, busy_timeout_s: float = 5.0) -> None:
        self.url = url
        parsed = make_url(url)
        self._backend: _SqliteBackend | _AsyncBackend = (
            _SqliteBackend(parsed, busy_timeout_s) if parsed.get_backend_name() == "sqlite" else _AsyncBackend(url)
        )

    @property
    def dialect(self) -> str:
        return self._backend.dialect

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in a read transaction (rolled back afterwards)."""
        try:
            return await self._backend.read(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def lookup(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn`, a call's point read (a few rows by an index, no report), in a read transaction on a
        plain connection: on SQLite on the event loop's thread unless the database is busy (see the
        module's doc)."""
        try:
            return await self._backend.lookup(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def write(self, fn: Callable[[Session], T], *, durable: bool = False) -> T:
        """Run `fn` in a write transaction (``BEGIN IMMEDIATE`` on SQLite) and commit it; `durable`: see above."""
        try:
            return await self._backend.write(fn, durable)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def run_with_connection(self, fn: Callable[[Connection], T], *, durable: bool = False) -> T:
        """Run `fn` on a plain connection inside one write transaction and commit it (migrations, DDL, and the
        call path's Core writes: without an ORM session, a write costs ~100 µs less); `durable`: see above."""
        try:
            return await self._backend.run_with_connection(fn, durable)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def write_on_loop(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn`, a Core write that needs no fsync (an outbox message, a batch of records), as
        `run_with_connection` does: on SQLite on the event loop's thread unless the database is busy (see
        the module's doc)."""
        try:
            return await self._backend.write_on_loop(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def aclose(self) -> None:
        await self._backend.aclose()


class _SqliteBackend:
    dialect = "sqlite"

    def __init__(self, url: URL, busy_timeout_s: float) -> None:
        if url.database in (None, "", ":memory:"):
            raise ValueError(f"{url}: an in-memory SQLite store is not supported; give a file path")
        _private_file(Path(url.database))
        self._engine = create_engine(
            url.set(drivername="sqlite"),  # pysqlite, whichever driver the URL names (aiosqlite)
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            pool_size=SQLITE_THREADS,
            max_overflow=0,
        )
        _configure_sqlite(self._engine, busy_timeout_s)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False, autoflush=True)
        # Lookups on the loop's thread, one at a time: a connection that never waits for a lock, kept open.
        self._lookup_engine = create_engine(
            url.set(drivername="sqlite"), connect_args={"timeout": 0, "check_same_thread": False}, pool_size=1
        )
        _configure_sqlite(self._lookup_engine, 0)
        self._lookup_connection: Connection | None = None
        # Core writes (`run_with_connection`) take turns anyway: one connection kept open serves them all.
        # Checking a connection out of the pool and back, each time, cost more than a small insert.
        self._writer_engine = create_engine(
            url.set(drivername="sqlite"),
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            pool_size=1,
            max_overflow=0,
        )
        _configure_sqlite(self._writer_engine, busy_timeout_s)
        self._writer_connection: Connection | None = None
        # Writes on the loop's thread, in the write turn: a connection that never waits for a lock and
        # never checkpoints (the writes in threads do, fsync and all, as they commit).
        self._loop_writer_engine = create_engine(
            url.set(drivername="sqlite"), connect_args={"timeout": 0, "check_same_thread": False}, pool_size=1
        )
        _configure_sqlite(self._loop_writer_engine, 0, checkpoints=False)
        self._loop_writer_connection: Connection | None = None
        self._threads = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="ivr-store")
        self._write_turn = asyncio.Lock()  # this process's writers take turns here (see the module's doc)
        self._loop_writes: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []  # waiting their turn
        self._loop_writes_turn: asyncio.Task[None] | None = None

    async def read(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._read, fn)

    async def lookup(self, fn: Callable[[Connection], T]) -> T:
        try:
            if self._lookup_connection is None:
                self._lookup_connection = self._lookup_engine.connect()
            with self._lookup_connection.begin():
                return fn(self._lookup_connection)
        except OperationalError as exc:
            if not _busy(exc):
                raise
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._read_connection, fn)

    async def write_on_loop(self, fn: Callable[[Connection], T]) -> T:
        if not self._write_turn.locked():
            return await self._write_on_loop_now(fn)
        # A write in a thread has the turn. Queued in the lock one by one, each write here took a turn of the
        # loop of its own once the lock reached it (50 behind one write: 47 turns), and in a burst hundreds
        # of outbox messages, and the batches of call records behind them, waited their turns one by one.
        # Every write here that waits meanwhile takes one place in the lock's queue, together, and runs there.
        written: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._loop_writes.append((fn, written))
        if self._loop_writes_turn is None:
            self._loop_writes_turn = asyncio.create_task(self._write_queued_on_loop(), name="store-loop-writes")
            self._loop_writes_turn.add_done_callback(self._loop_writes_ended)
        return await written

    async def _write_queued_on_loop(self) -> None:
        async with self._write_turn:
            queued, self._loop_writes, self._loop_writes_turn = self._loop_writes, [], None
            try:
                for fn, written in queued:
                    if written.done():
                        continue  # its caller went away before its turn: nothing written
                    try:
                        result = await self._write_on_loop_now(fn, in_turn=True)
                    except Exception as exc:  # the caller's, as if it had run the write itself
                        if not written.done():
                            written.set_exception(exc)
                    else:
                        if not written.done():
                            written.set_result(result)
            finally:
                for _, written in queued:
                    written.cancel()  # cancelled part-way (the loop closing): none left waiting (done ones stay)

    def _loop_writes_ended(self, turn: asyncio.Task[None]) -> None:
        if self._loop_writes_turn is turn:  # cancelled before its turn came: its writes are not left waiting
            queued, self._loop_writes, self._loop_writes_turn = self._loop_writes, [], None
            for _, written in queued:
                written.cancel()

    async def _write_on_loop_now(self, fn: Callable[[Connection], T], *, in_turn: bool = False) -> T:
        """`fn` in a transaction on the loop's connection, where no other writer of this process is writing
        (nothing awaits until it ends); while another process holds the write lock, in a thread waiting for it."""
        options = {_WRITE: True, _DURABLE: False}
        try:
            if self._loop_writer_connection is None:  # every transaction of it begins the same way
                self._loop_writer_connection = self._loop_writer_engine.connect().execution_options(**options)
            with self._loop_writer_connection.begin():
                return fn(self._loop_writer_connection)
        except OperationalError as exc:
            if not _busy(exc):
                raise
        # Rolled back; `fn` runs again in the thread.
        if in_turn:
            return await self._in_thread(self._with_connection, fn, options)
        return await self._in_turn(self._with_connection, fn, options)

    async def write(self, fn: Callable[[Session], T], durable: bool) -> T:
        return await self._in_turn(self._write, fn, {_WRITE: True, _DURABLE: durable})

    async def run_with_connection(self, fn: Callable[[Connection], T], durable: bool) -> T:
        return await self._in_turn(self._with_connection, fn, {_WRITE: True, _DURABLE: durable})

    async def aclose(self) -> None:
        await asyncio.to_thread(self._threads.shutdown)
        self._engine.dispose()
        for connection in (self._lookup_connection, self._writer_connection, self._loop_writer_connection):
            if connection is not None:
                connection.close()
        for engine in (self._lookup_engine, self._writer_engine, self._loop_writer_engine):
            engine.dispose()

    async def _in_turn(
        self, run: Callable[[Any, dict[str, bool], threading.Event], T], fn: Any, options: dict[str, bool]
    ) -> T:
        """Run a write transaction in a worker thread, holding the write turn until it has ended."""
        async with self._write_turn:
            return await self._in_thread(run, fn, options)

    async def _in_thread(
        self, run: Callable[[Any, dict[str, bool], threading.Event], T], fn: Any, options: dict[str, bool]
    ) -> T:
        """A write transaction in a worker thread; the caller holds the write turn."""
        gave_up = threading.Event()
        done = asyncio.get_running_loop().run_in_executor(self._threads, run, fn, options, gave_up)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            gave_up.set()  # rolled back unless already committed
            await asyncio.wait({done})  # the next writer waits for this transaction's end
            if not done.cancelled():
                done.exception()  # its outcome (_GaveUp: rolled back) has no one left to hear it
            raise

    def _read(self, fn: Callable[[Session], T]) -> T:
        with self._sessions() as session:
            return fn(session)

    def _read_connection(self, fn: Callable[[Connection], T]) -> T:
        with self._engine.connect() as conn, conn.begin():
            return fn(conn)

    def _write(self, fn: Callable[[Session], T], options: dict[str, bool], gave_up: threading.Event) -> T:
        with self._sessions() as session:
            session.connection(execution_options=options)
            result = fn(session)
            if gave_up.is_set():
                raise _GaveUp
            session.commit()
            return result

    def _with_connection(self, fn: Callable[[Connection], T], options: dict[str, bool], gave_up: threading.Event) -> T:
        # In the write turn: no other thread uses the writer's connection meanwhile.
        if self._writer_connection is None:
            self._writer_connection = self._writer_engine.connect()
        conn = self._writer_connection.execution_options(**options)  # in place, for this transaction's BEGIN
        with conn.begin():
            result = fn(conn)
            if gave_up.is_set():
                raise _GaveUp
            return result


class _AsyncBackend:
    """PostgreSQL (asyncpg): no single write lock, so no write turn."""

    def __init__(self, url: str) -> None:
        self._engine = create_async_engine(url, pool_pre_ping=True)
        self.dialect = self._engine.dialect.name
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False, autoflush=True)

    async def read(self, fn: Callable[[Session], T]) -> T:
        async with self._sessions() as session:
            return await session.run_sync(fn)

    async def lookup(self, fn: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as conn:  # asyncpg's reads are on the loop already
            return await conn.run_sync(fn)

    async def write(self, fn: Callable[[Session], T], durable: bool) -> T:
        async with self._sessions() as session:
            await session.connection(execution_options={_WRITE: True})
            result = await session.run_sync(fn)
            await session.commit()
            return result

    async def run_with_connection(self, fn: Callable[[Connection], T], durable: bool) -> T:
        async with self._engine.connect() as conn:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                return await conn.run_sync(fn)

    async def write_on_loop(self, fn: Callable[[Connection], T]) -> T:
        return await self.run_with_connection(fn, durable=False)

    async def aclose(self) -> None:
        await self._engine.dispose()


def open_store(settings: Settings, url: str | None = None) -> Store:
    """The store named by `url`, or by the settings (``IVR_DATABASE_URL``), with the settings' busy timeout."""
    return Store(url or settings.database_url, busy_timeout_s=settings.store.busy_timeout_s)


def _busy(exc: OperationalError) -> bool:
    """SQLite said the database (or a table) is locked."""
    return getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _configure_sqlite(engine: Any, busy_timeout_s: float, *, checkpoints: bool = True) -> None:
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints:  # a checkpoint syncs the files: not on the event loop's thread
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # On pysqlite itself: through exec_driver_sql, each statement made a cursor and a result (~30 µs).
        sqlite = conn.connection.driver_connection
        assert sqlite is not None  # only a detached connection has none, and "begin" comes on an attached one
        begin = "BEGIN IMMEDIATE" if options.get(_WRITE) else "BEGIN"
        try:
            if options.get(_WRITE):
                # Per transaction, before BEGIN (a pooled connection keeps what the last one set).
                sqlite.execute(f"PRAGMA synchronous={'FULL' if options.get(_DURABLE) else 'NORMAL'}")
            sqlite.execute(begin)
        except sqlite3.OperationalError as exc:
            # Raised inside SQLAlchemy's event, pysqlite's own error would pass unwrapped: a database locked
            # past the busy timeout must reach the store's callers as the outage it is (StoreUnavailable).
            raise OperationalError(begin, None, exc) from exc


def private_directory(directory: Path) -> None:
    """A directory for the database (personal data), made 0700 with any missing parent. An existing one is left as it
    is: it may not be ours alone."""
    missing = [path for path in (directory, *directory.parents) if not path.exists()]
    for path in reversed(missing):  # mkdir(parents=True) would give the parents the umask's mode
        path.mkdir(mode=0o700, exist_ok=True)


def _private_file(database: Path) -> None:
    """The database file created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the
    database file's mode), an existing one tightened to 0600. A missing directory is not made here: the
    store is then unavailable, as a database elsewhere would be (`ivr db upgrade` makes it).

    An existing file is never opened here: closing any descriptor of a file drops every POSIX lock this
    process holds on it, so the locks of another store's SQLite connections in this process would go
    (two `ivr serve` units on one file corrupted it). O_EXCL opens only a file nobody has yet.
    """
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if database.stat().st_mode & 0o077:
            database.chmod(0o600)  # a chmod takes no descriptor, and no lock
    except OSError:
        pass  # no directory, or not ours to write: SQLite says so, as StoreUnavailable, at the first use


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
