"""The store's engine and its two ways in: `Store.read(fn)` and `Store.write(fn)`.

Both take a *synchronous* function of an ORM `Session` and run it inside one transaction, so no
caller code can await something else (a prompt, a back-end) while a transaction is open: the write
lock is held only for the database work itself.

SQLite (the default, through aiosqlite) needs care under asyncio: pysqlite's implicit deferred
``BEGIN`` lets two connections read the same row and both write it (a lost update; 20 concurrent
read-then-write transactions left a counter at 1). Here the driver's own transaction handling is off,
writes start with ``BEGIN IMMEDIATE`` (the write lock is taken before the first read), the journal is
WAL (readers never block the writer) and a busy timeout makes a writer of another process wait
instead of failing. SQLite has one writer at a time anyway, so writers of this process queue on an
`asyncio.Lock` before taking a pooled connection: waiting in SQLite's busy handler instead would sleep
(leaving the lock idle) while holding connections that reads (the caller-ID lookup) need. PostgreSQL
URLs (asyncpg) work unchanged, without the lock; the SQL is kept portable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

T = TypeVar("T")

_WRITE = "ivr_write"  # execution option marking a connection that begins a write transaction


class StoreUnavailable(ConnectionError):
    """The database cannot be reached or is locked past the busy timeout (an outage, not a bug)."""


class Store:
    def __init__(self, url: str, *, busy_timeout_s: float = 5.0) -> None:
        self.url = url
        self.engine: AsyncEngine = _make_engine(url, busy_timeout_s)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        # SQLite: this process's writers take turns here, not in the busy handler (see the module's doc).
        self._write_turn: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in a read transaction (rolled back afterwards)."""
        try:
            async with self._sessions() as session:
                return await session.run_sync(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in a write transaction (``BEGIN IMMEDIATE`` on SQLite) and commit it."""
        try:
            async with self._writer(), self._sessions() as session:
                await session.connection(execution_options={_WRITE: True})
                result = await session.run_sync(fn)
                await session.commit()
                return result
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def run_with_connection(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a plain connection inside one write transaction (migrations, DDL)."""
        try:
            async with self._writer(), self.engine.connect() as conn:
                await conn.execution_options(**{_WRITE: True})
                async with conn.begin():
                    return await conn.run_sync(fn)
        except (OperationalError, InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"store unavailable: {_reason(exc)}") from exc

    async def aclose(self) -> None:
        await self.engine.dispose()

    def _writer(self) -> AbstractAsyncContextManager[object]:
        return self._write_turn if self._write_turn is not None else nullcontext()


def open_store(url: str | None = None) -> Store:
    """The store named by `url`, or by the settings (``IVR_DATABASE_URL``)."""
    from ivr.config import settings

    conf = settings()
    return Store(url or conf.database_url, busy_timeout_s=conf.store.busy_timeout_s)


def _make_engine(url: str, busy_timeout_s: float) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        raise ValueError(f"{url}: an in-memory SQLite store is not supported; give a file path")
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout_s})
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
