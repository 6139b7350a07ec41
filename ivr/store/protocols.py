"""Call protocol numbers: from the store's sequence, or from a local fallback range when it is down.

The protocol is the one write a call waits for. Normally it comes from the ``call_protocol:<year>``
sequence in the store (safe across processes and hosts). When the store does not answer within
``settings.store.allocate_timeout_s``, the call still gets a number, from this unit's fallback range
(``settings.unit_fallback_range``, disjoint from the store's numbers). Fallback numbers are
reserved in blocks in a small local file before any is issued, so a restart never issues one again,
and then come from memory (a burst of calls falling back costs one durable write per block, not per
call); a journal lists the numbers the store has not heard of yet. Once the store answers again they
are recorded in ``fallback_protocols`` (reconciled) and dropped from the journal.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ivr.clock import Clock
from ivr.engine.ports import CallInfo, Metrics, NoMetrics
from ivr.protocol_number import make_call_protocol
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import FallbackProtocol
from ivr.store.sequences import call_protocol_sequence, next_value

log = logging.getLogger(__name__)


class ProtocolRangeExhausted(RuntimeError):
    """No number left in a range: the store's sequence reached the fallback range, or the range is used up."""


@dataclass(frozen=True, slots=True)
class IssuedProtocol:
    protocol: str
    issued_at: str  # ISO 8601, UTC
    unique_id: str


class FallbackRange:
    """This unit's local range, shared by the IVR processes of this host through two files.

    `path` (JSON) holds, per year, the highest number reserved. Numbers are reserved in blocks of
    `block`: one fsync'd rewrite of that file under an exclusive `flock` per block, then the block's
    numbers are issued from memory. A reserved number that is never issued (the process crashed) is
    skipped, never reused; a clean close gives the unused tail back when no one reserved after it.
    Each issued number is appended to a journal (`<path>.pending.jsonl`) until the store records it;
    the journal is fsync'd once per block, so a host crash loses at most a block's records, not numbers.
    Not thread-safe: one thread uses an instance at a time (`StoreProtocolAllocator` sees to it).
    """

    def __init__(self, path: Path, first: int, last: int, *, block: int = 100) -> None:
        if not 0 < first <= last:
            raise ValueError(f"protocol fallback range {first}..{last} is empty or not positive")
        if block < 1:
            raise ValueError(f"protocol fallback block size {block} must be positive")
        self.path = path
        self.journal = path.with_name(path.name + ".pending.jsonl")
        self.first, self.last = first, last
        self._block = block
        self._in_hand: dict[int, list[int]] = {}  # year -> [next, end] of the block being issued

    def has_number(self, year: int) -> bool:
        """Whether `issue` can answer from memory (no file write, no fsync)."""
        span = self._in_hand.get(year)
        return span is not None and span[0] <= span[1]

    def reserve(self, year: int) -> None:
        """Take the next block of `year` for this instance (blocking: a file lock and two fsyncs)."""
        with self._locked() as state:
            used = state["last"].get(str(year), self.first - 1)
            if used >= self.last:
                raise ProtocolRangeExhausted(f"fallback range {self.first}..{self.last} used up for {year}")
            end = min(used + self._block, self.last)
            state["last"][str(year)] = end
            self._save(state)
            self._sync_journal()  # the previous block's records become durable with this one
        self._in_hand[year] = [used + 1, end]

    def issue(self, year: int, unique_id: str, now: datetime) -> str:
        if not self.has_number(year):
            self.reserve(year)
        span = self._in_hand[year]
        protocol = make_call_protocol(year, span[0])
        span[0] += 1
        line = json.dumps(asdict(IssuedProtocol(protocol, now.astimezone(UTC).isoformat(), unique_id)))
        with self._locked():  # `forget` replaces the journal: append to the current one
            with open(self.journal, "a", encoding="utf-8") as out:
                out.write(line + "\n")
        return protocol

    def pending(self) -> list[IssuedProtocol]:
        """The issued numbers the store has not recorded yet (of every process sharing the files)."""
        with self._locked():
            return self._read_journal()

    def forget(self, protocols: set[str]) -> None:
        """Drop reconciled numbers from the journal (the per-year reservation stays)."""
        with self._locked():
            kept = [item for item in self._read_journal() if item.protocol not in protocols]
            self._replace(self.journal, "".join(json.dumps(asdict(item)) + "\n" for item in kept))

    def release(self) -> None:
        """Give back the unissued tail of this instance's blocks, unless someone reserved after them."""
        if not any(self.has_number(year) for year in self._in_hand):
            return
        with self._locked() as state:
            for year, (next_number, end) in self._in_hand.items():
                if next_number <= end and state["last"].get(str(year)) == end:
                    state["last"][str(year)] = next_number - 1
            self._save(state)
            self._sync_journal()
        self._in_hand.clear()

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The state file's content, under the exclusive lock other IVR processes on this host take too."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:  # a new open file: excludes threads too
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self._load()

    def _save(self, state: dict[str, Any]) -> None:
        self._replace(self.path, json.dumps(state, indent=1, sort_keys=True))

    @staticmethod
    def _replace(path: Path, text: str) -> None:
        """Write `path` atomically and durably (fsync'd before it replaces the old file)."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def _sync_journal(self) -> None:
        """fsync the journal, ending first a last line a crash cut short (appends then start afresh)."""
        if not self.journal.exists():  # nothing issued yet
            return
        with open(self.journal, "r+b") as journal:
            size = journal.seek(0, os.SEEK_END)
            if size:
                journal.seek(size - 1)
                if journal.read(1) != b"\n":
                    journal.write(b"\n")
            os.fsync(journal.fileno())

    def _read_journal(self) -> list[IssuedProtocol]:
        try:
            text = self.journal.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        issued = []
        for number, line in enumerate(text.splitlines(), 1):
            try:
                issued.append(IssuedProtocol(**json.loads(line)))
            except (ValueError, TypeError) as exc:  # cut short by a host crash: the number stays reserved
                log.warning(
                    "%s:%d: skipped, not a JSON object with protocol, issued_at, unique_id: %s",
                    self.journal, number, exc,
                )  # fmt: skip
        return issued

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"last": {}}
        except ValueError as exc:
            raise ValueError(
                f"{self.path}: not a protocol fallback state file (expected JSON): {exc}"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("last"), dict):
            raise ValueError(f"{self.path}: expected a JSON object with 'last' (the highest number reserved per year)")
        return {"last": data["last"]}


class StoreProtocolAllocator:
    """`ivr.engine.ports.ProtocolAllocator` over the store, with the local fallback range."""

    def __init__(
        self,
        store: Store,
        fallback: FallbackRange,
        *,
        timeout_s: float,
        clock: Clock,
        timezone: str = "America/Sao_Paulo",
        unit: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or NoMetrics()  # counts the numbers issued from the fallback range
        self._fallback = fallback
        self._timeout_s = timeout_s
        self._zone = ZoneInfo(timezone)
        self._unit = unit or socket.gethostname()
        self._clock = clock
        self._waiting: dict[int, list[asyncio.Future[int]]] = {}  # year -> calls waiting for a number
        self._taking: asyncio.Task[None] | None = None
        self._reconciling: asyncio.Task[int] | None = None
        self._maybe_pending = True  # the journal may hold numbers from before a restart
        self._fallback_turn = asyncio.Lock()  # one coroutine (or its thread) uses the range at a time

    async def allocate(self, call: CallInfo) -> str:
        now = self._clock()
        year = now.astimezone(self._zone).year
        number: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(year, []).append(number)
        if self._taking is None or self._taking.done():
            self._taking = asyncio.create_task(self._take_numbers(), name="protocol-allocation")
        try:
            done, _ = await asyncio.wait({number}, timeout=self._timeout_s)
        finally:
            # Given up (time-out, caller gone): a batch that has not taken it skips it; one under way
            # leaves a gap, never a duplicate.
            number.cancel()
        if not done:
            return await self._from_fallback(year, call, now, "no answer in time")
        try:
            sequence = number.result()
        except (StoreUnavailable, SQLAlchemyError) as exc:  # down, or broken (e.g. not migrated)
            return await self._from_fallback(year, call, now, str(exc))
        if sequence >= self._fallback.first:
            name = call_protocol_sequence(year)
            raise ProtocolRangeExhausted(f"sequence {name} reached the fallback range at {sequence}")
        if self._maybe_pending and self._reconciling is None:
            self._reconciling = asyncio.create_task(self.reconcile())
            self._reconciling.add_done_callback(self._reconciled)
        return make_call_protocol(year, sequence)

    async def _take_numbers(self) -> None:
        """Give every call waiting a number, one store transaction per year for all the calls that asked
        since the last one (a burst of calls costs a few writes, not one each)."""
        while self._waiting:
            waiting, self._waiting = self._waiting, {}
            for year, futures in waiting.items():
                wanted = [f for f in futures if not f.done()]
                if not wanted:
                    continue
                name = call_protocol_sequence(year)
                try:
                    # durable: a number announced to a caller must never be issued again after a power cut
                    last = await self._store.run_with_connection(
                        partial(next_value, name=name, count=len(wanted)), durable=True
                    )
                except Exception as exc:  # handed to each waiting call: allocate() falls back or raises it
                    for future in wanted:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for sequence, future in enumerate(wanted, last - len(wanted) + 1):
                    if not future.done():  # else its call gave up meanwhile: a gap
                        future.set_result(sequence)

    async def reconcile(self) -> int:
        """Record the fallback numbers in the store; returns how many were reconciled."""
        self._maybe_pending = False  # a number issued from now on sets it again
        try:
            pending = await asyncio.to_thread(self._fallback.pending)
            if pending:
                now = self._clock()
                rows = [
                    {
                        "protocol": item.protocol,
                        "unit": self._unit,
                        "issued_at": datetime.fromisoformat(item.issued_at),
                        "unique_id": item.unique_id,
                        "reconciled_at": now,
                    }
                    for item in pending
                ]
                # durable: the journal is forgotten next, so a power cut must not undo this commit
                await self._store.write(lambda session: _insert_new(session, rows), durable=True)
                await asyncio.to_thread(self._fallback.forget, {item.protocol for item in pending})
                log.info("reconciled %d protocol(s) issued from the fallback range", len(pending))
        except BaseException:
            self._maybe_pending = True
            raise
        return len(pending)

    async def aclose(self) -> None:
        """Wait for a reconciliation under way and for store answers that came too late; give back the
        fallback numbers reserved but not issued."""
        tasks = [task for task in (self._taking, self._reconciling) if task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        async with self._fallback_turn:
            await asyncio.to_thread(self._fallback.release)

    async def _from_fallback(self, year: int, call: CallInfo, now: datetime, why: str) -> str:
        log.warning("protocol from the local fallback range (store: %s)", why)
        async with self._fallback_turn:
            if not self._fallback.has_number(year):
                await asyncio.to_thread(self._fallback.reserve, year)  # file lock + fsync: off the loop
            protocol = self._fallback.issue(year, call.unique_id, now)  # from memory, one journal line
        self._maybe_pending = True
        self._metrics.protocol_fell_back()
        return protocol

    def _reconciled(self, task: asyncio.Task[int]) -> None:
        self._reconciling = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("fallback protocols not reconciled yet: %s", task.exception())


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the fallback protocols the store does not have yet (a retried reconciliation skips them)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(FallbackProtocol).on_conflict_do_nothing(index_elements=[FallbackProtocol.protocol])
    session.execute(statement, rows)
