"""Node visits (and call records) written to the store in batches, off the call's path.

`emit` only appends to a bounded in-memory buffer; one background task writes it in batches (one
transaction each, one bulk ``executemany`` statement per kind of record: ORM objects cost ~10x the
CPU on the event loop). While the store is down records wait and the task retries with a growing
pause; when the buffer is full new records are dropped and counted (`dropped`), so a store outage
never stops or slows a call. Records keep their order: batches are written in turn, and within a
batch the kinds go by `Rank`, so a call's row is written before its visits and the call's end last.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from itertools import islice
from typing import Any, Protocol

from sqlalchemy import Connection, insert
from sqlalchemy.exc import SQLAlchemyError

from ivr.engine.ports import NodeVisit
from ivr.store import models
from ivr.store.db import Store, StoreUnavailable
from ivr.store.pointread import Inserted, insert_rows

log = logging.getLogger(__name__)


class Rank(IntEnum):
    """The order of the kinds of record within a batch."""

    CALL_START = 0
    VISIT = 1
    CALL_END = 2


@dataclass(frozen=True, eq=False)
class RecordKind:
    """How records of one kind are written: one statement, executed once with all their rows."""

    name: str
    rank: Rank
    statement: Callable[[str], Inserted]  # of the dialect's name ("sqlite", "postgresql")


class Record(Protocol):
    @property
    def kind(self) -> RecordKind: ...  # read-only: each kind of record says it once, as a class attribute

    def row(self) -> dict[str, Any]:
        """This record's parameters for its kind's statement (raises ValueError for a bad record)."""
        ...


#: Prompts kept per visit: a node replays its question a few times at most; a runaway list is cut.
MAX_PROMPTS = 200


@cache
def _insert_visits(_dialect: str) -> Inserted:
    return insert(models.NodeVisit)


class _Visit:
    __slots__ = ("visit",)
    kind = RecordKind("node visit", Rank.VISIT, _insert_visits)

    def __init__(self, visit: NodeVisit) -> None:
        self.visit = visit

    def row(self) -> dict[str, Any]:
        v = self.visit
        return {
            "call_protocol": v.call_protocol[:12],
            "flow": v.flow[:80],
            "flow_version": v.flow_version[:40],
            "node": v.node[:80],
            "verb": v.verb[:40],
            "input": v.input[:200],
            "outcome": v.outcome[:80],
            # The engine's clock gives aware times; a naive one is taken as the host's local time.
            "started_at": v.started_at if v.started_at.tzinfo else v.started_at.astimezone(),
            "duration_ms": v.duration_ms,
            "prompts": list(v.prompts[:MAX_PROMPTS]),
        }


class StoreEventSink:
    """`ivr.engine.ports.EventSink` over the store. Call `start()` once, `aclose()` on shutdown."""

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 1000,
        flush_interval_s: float = 1.0,
        max_buffer: int = 20_000,
        retry_max_s: float = 5.0,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_buffer = max_buffer
        self._retry_max_s = retry_max_s
        self._buffer: deque[Record] = deque()
        self._data = asyncio.Event()  # a full batch is waiting, or a flush was asked for
        self._closing = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None
        self._store_down = False
        self._deadline = 0.0  # loop time after which the shutdown flush starts no new batch
        self.dropped = 0  # records lost: the buffer was full, or not written by the end of the shutdown flush
        self.rejected = 0  # records the store refused (a bug, logged with its traceback)
        self.written = 0
        self.failed_writes = 0  # attempts that found the store unavailable

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def emit(self, visit: NodeVisit) -> None:
        self.record(_Visit(visit))

    def record(self, record: Record) -> None:
        """Buffer any record (call rows use this too); never blocks, never raises."""
        if len(self._buffer) >= self._max_buffer:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "event buffer full (%d): %d record(s) dropped so far", self._max_buffer, self.dropped
                )
            return
        self._buffer.append(record)
        self._empty.clear()
        if len(self._buffer) >= self._batch_size:
            self._data.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="store-event-writer")

    async def flushed(self) -> None:
        """Wait until everything buffered so far has been written (the writer is woken now)."""
        self._data.set()
        await self._empty.wait()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Write what is buffered, starting no batch after `timeout_s`, then stop; what was not written
        is dropped and counted. A batch under way when time is up is waited for (SQLite's busy timeout
        bounds it) up to `timeout_s` more; past that it is cancelled and counted as dropped too."""
        self._deadline = asyncio.get_running_loop().time() + timeout_s
        self._closing.set()
        task, self._task = self._task, None
        try:
            if task is not None:
                done, _ = await asyncio.wait({task}, timeout=2 * timeout_s)
                if done:
                    task.result()  # a bug in the writer surfaces here
                else:
                    log.warning(
                        "event writer still writing %.1f s after the flush's end: cancelled; its batch is"
                        " counted as dropped though it may have reached the store",
                        timeout_s,
                    )
                    task.cancel()
                    await asyncio.wait({task})
        finally:
            if self._buffer:
                self.dropped += len(self._buffer)
                log.warning("%d record(s) not written by shutdown: dropped", len(self._buffer))
                self._buffer.clear()
                self._empty.set()

    async def _run(self) -> None:
        pause = self._flush_interval_s
        while True:
            await self._wait(pause, wake_on_data=not self._store_down)
            if not self._buffer:
                self._empty.set()
                if self._closing.is_set():
                    return
                pause = self._flush_interval_s
                continue
            if self._closing.is_set() and asyncio.get_running_loop().time() >= self._deadline:
                return  # the shutdown flush's time is up: aclose counts what is left
            try:
                await self._write_batch()
            except StoreUnavailable as exc:
                self.failed_writes += 1
                if self._closing.is_set():
                    return
                if not self._store_down:
                    log.warning("store unavailable, %d record(s) waiting: %s", len(self._buffer), exc)
                    self._store_down = True
                    pause = min(0.1, self._retry_max_s)
                else:
                    pause = min(pause * 2, self._retry_max_s)
                continue
            if self._store_down:
                log.info("store available again; writing %d waiting record(s)", len(self._buffer))
                self._store_down = False
            if self._buffer:
                pause = 0
            else:
                self._empty.set()
                pause = self._flush_interval_s

    async def _wait(self, timeout_s: float, *, wake_on_data: bool) -> None:
        waiters = [asyncio.ensure_future(self._closing.wait())]
        if wake_on_data:
            waiters.append(asyncio.ensure_future(self._data.wait()))
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._data.clear()

    async def _write_batch(self) -> None:
        batch = list(islice(self._buffer, self._batch_size))
        try:
            rows: dict[RecordKind, list[dict[str, Any]]] = {}
            for record in batch:
                rows.setdefault(record.kind, []).append(record.row())

            def write(connection: Connection) -> None:
                # One executemany per kind on a connection (on SQLite on pysqlite itself). Through a Session,
                # an insert of an ORM entity takes the ORM's bulk path, which builds state per row.
                for kind in sorted(rows, key=lambda k: k.rank):
                    insert_rows(connection, kind.statement(connection.dialect.name), rows[kind])

            await self._store.write_on_loop(write)
        except StoreUnavailable:
            raise
        except (SQLAlchemyError, ValueError, TypeError):  # a bad record, not an outage: log it, go on
            log.exception("store refused a batch of %d record(s); they are dropped", len(batch))
            self.rejected += len(batch)
        else:
            self.written += len(batch)
        for _ in batch:
            self._buffer.popleft()
