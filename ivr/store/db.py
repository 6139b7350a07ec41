"""The store's engine and its two ways in: `Store.read(fn)` and `Store.write(fn)`.

Both take a *synchronous* function of an ORM `Session` and run it inside one transaction, so no
caller code can await something else (a prompt, a back-end) while a transaction is open: the write
lock is held only for the database work itself.

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
cannot spare). PostgreSQL URLs (asyncpg) run on SQLAlchemy's asyncio engine; the SQL is kept portable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
SQLITE_THREADS = 8  # worker threads (and pooled connections) of a SQLite store


class StoreUnavailable(ConnectionError):
    """The database cannot be reached or is locked past the busy timeout (an outage, not a bug)."""


class _GaveUp(Exception):
    """The caller of a write was cancelled before its transaction committed: it is rolled back."""


class Store:
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

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in a write transaction (``BEGIN IMMEDIATE`` on SQLite) and commit it."""
        try:
            return await self._backend.write(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def run_with_connection(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a plain connection inside one write transaction (migrations, DDL)."""
        try:
            return await self._backend.run_with_connection(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def aclose(self) -> None:
        await self._backend.aclose()


class _SqliteBackend:
    dialect = "sqlite"

    def __init__(self, url: URL, busy_timeout_s: float) -> None:
        if url.database in (None, "", ":memory:"):
            raise ValueError(f"{url}: an in-memory SQLite store is not supported; give a file path")
        self._engine = create_engine(
            url.set(drivername="sqlite"),  # pysqlite, whichever driver the URL names (aiosqlite)
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            pool_size=SQLITE_THREADS,
            max_overflow=0,
        )
        _configure_sqlite(self._engine, busy_timeout_s)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False, autoflush=True)
        self._threads = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="ivr-store")
        self._write_turn = asyncio.Lock()  # this process's writers take turns here (see the module's doc)

    async def read(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._read, fn)

    async def write(self, fn: Callable[[Session], T]) -> T:
        return await self._in_turn(self._write, fn)

    async def run_with_connection(self, fn: Callable[[Connection], T]) -> T:
        return await self._in_turn(self._with_connection, fn)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._threads.shutdown)
        self._engine.dispose()

    async def _in_turn(self, run: Callable[[Any, threading.Event], T], fn: Any) -> T:
        """Run a write transaction in a worker thread, holding the write turn until it has ended."""
        gave_up = threading.Event()
        async with self._write_turn:
            done = asyncio.get_running_loop().run_in_executor(self._threads, run, fn, gave_up)
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

    def _write(self, fn: Callable[[Session], T], gave_up: threading.Event) -> T:
        with self._sessions() as session:
            session.connection(execution_options={_WRITE: True})
            result = fn(session)
            if gave_up.is_set():
                raise _GaveUp
            session.commit()
            return result

    def _with_connection(self, fn: Callable[[Connection], T], gave_up: threading.Event) -> T:
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
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

    async def write(self, fn: Callable[[Session], T]) -> T:
        async with self._sessions() as session:
            await session.connection(execution_options={_WRITE: True})
            result = await session.run_sync(fn)
            await session.commit()
            return result

    async def run_with_connection(self, fn: Callable[[Connection], T]) -> T:
        async with self._engine.connect() as conn:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                return await conn.run_sync(fn)

    async def aclose(self) -> None:
        await self._engine.dispose()


def open_store(settings: Settings, url: str | None = None) -> Store:
    """The store named by `url`, or by the settings (``IVR_DATABASE_URL``), with the settings' busy timeout."""
    return Store(url or settings.database_url, busy_timeout_s=settings.store.busy_timeout_s)


def _configure_sqlite(engine: Any, busy_timeout_s: float) -> None:
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On pysqlite itself: through exec_driver_sql, a BEGIN made a cursor and a result (~30 µs a transaction).
        sqlite = conn.connection.driver_connection
        sqlite.execute("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
