"""Call protocol numbers: from the store's sequence, or from a local fallback range when it is down.

The protocol is the one write a call waits for. Normally it comes from the ``call_protocol:<year>``
sequence in the store (safe across processes and hosts). When the store does not answer within
``settings().store.allocate_timeout_s``, the call still gets a number, from this unit's fallback range
(``settings().protocol_fallback_range``, disjoint from the store's numbers). Each fallback number is
written to a small local file before it is returned, so a restart never issues it again; the file
also lists the numbers the store has not heard of yet. Once the store answers again they are recorded
in ``fallback_protocols`` (reconciled) and dropped from the pending list.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ivr.engine.channel import CallInfo
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
    """This unit's local range, persisted in `path` (a JSON file) under an exclusive file lock."""

    def __init__(self, path: Path, first: int, last: int) -> None:
        if not 0 < first <= last:
            raise ValueError(f"protocol fallback range {first}..{last} is empty or not positive")
        self.path = path
        self.first, self.last = first, last

    def issue(self, year: int, unique_id: str, now: datetime) -> str:
        with self._locked() as state:
            used = state["last"].get(str(year), self.first - 1)
            if used >= self.last:
                raise ProtocolRangeExhausted(f"fallback range {self.first}..{self.last} used up for {year}")
            state["last"][str(year)] = used + 1
            protocol = make_call_protocol(year, used + 1)
            state["pending"].append(
                asdict(IssuedProtocol(protocol, now.astimezone(UTC).isoformat(), unique_id))
            )
            return protocol

    def pending(self) -> list[IssuedProtocol]:
        with self._locked() as state:
            return [IssuedProtocol(**item) for item in state["pending"]]

    def forget(self, protocols: set[str]) -> None:
        """Drop reconciled numbers from the pending list (the per-year high-water mark stays)."""
        with self._locked() as state:
            state["pending"] = [item for item in state["pending"] if item["protocol"] not in protocols]

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The file's state, written back atomically (and fsync'd) when the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # other IVR processes on this host share the range
            state = self._load()
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                tmp = self.path.with_suffix(".tmp")
                with open(tmp, "w", encoding="utf-8") as out:
                    json.dump(state, out, indent=1, sort_keys=True)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"last": {}, "pending": []}
        except ValueError as exc:
            raise ValueError(
                f"{self.path}: not a protocol fallback state file (expected JSON): {exc}"
            ) from exc
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("last"), dict)
            or not isinstance(data.get("pending"), list)
        ):
            raise ValueError(f"{self.path}: expected a JSON object with 'last' and 'pending'")
        return data


class StoreProtocolAllocator:
    """`ivr.engine.services.ProtocolAllocator` over the store, with the local fallback range."""

    def __init__(
        self,
        store: Store,
        fallback: FallbackRange,
        *,
        timeout_s: float,
        timezone: str = "America/Sao_Paulo",
        unit: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._timeout_s = timeout_s
        self._zone = ZoneInfo(timezone)
        self._unit = unit or socket.gethostname()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._background: set[asyncio.Task[Any]] = set()
        self._reconciling: asyncio.Task[int] | None = None
        self._maybe_pending = True  # the file may hold numbers from before a restart

    @classmethod
    def from_settings(cls, store: Store) -> StoreProtocolAllocator:
        from ivr.config import settings

        conf = settings()
        first, last = conf.protocol_fallback_range
        fallback = FallbackRange(conf.var_dir / "protocol_fallback.json", first, last)
        return cls(store, fallback, timeout_s=conf.store.allocate_timeout_s, timezone=conf.timezone)

    async def allocate(self, call: CallInfo) -> str:
        now = self._clock()
        year = now.astimezone(self._zone).year
        name = call_protocol_sequence(year)
        attempt = asyncio.ensure_future(self._store.write(lambda session: next_value(session, name)))
        # Never cancelled (time-out, caller gone): a late answer only leaves a gap, never a duplicate.
        try:
            done, _ = await asyncio.wait({attempt}, timeout=self._timeout_s)
        finally:
            if not attempt.done():
                self._keep(attempt)
        if not done:
            return await self._from_fallback(year, call, now, "no answer in time")
        try:
            sequence = attempt.result()
        except (StoreUnavailable, SQLAlchemyError) as exc:  # down, or broken (e.g. not migrated)
            return await self._from_fallback(year, call, now, str(exc))
        if sequence >= self._fallback.first:
            raise ProtocolRangeExhausted(f"sequence {name} reached the fallback range at {sequence}")
        if self._maybe_pending and self._reconciling is None:
            self._reconciling = asyncio.create_task(self.reconcile())
            self._reconciling.add_done_callback(self._reconciled)
        return make_call_protocol(year, sequence)

    async def reconcile(self) -> int:
        """Record the fallback numbers in the store; returns how many were reconciled."""
        pending = await asyncio.to_thread(self._fallback.pending)
        if pending:

            def record(session: Session) -> None:
                for item in pending:
                    if session.get(FallbackProtocol, item.protocol) is None:
                        session.add(
                            FallbackProtocol(
                                protocol=item.protocol,
                                unit=self._unit,
                                issued_at=datetime.fromisoformat(item.issued_at),
                                unique_id=item.unique_id,
                            )
                        )

            await self._store.write(record)
            await asyncio.to_thread(self._fallback.forget, {item.protocol for item in pending})
            log.info("reconciled %d protocol(s) issued from the fallback range", len(pending))
        self._maybe_pending = False
        return len(pending)

    async def aclose(self) -> None:
        """Wait for a reconciliation under way and for store answers that came too late."""
        tasks = [*self._background, *([self._reconciling] if self._reconciling else [])]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _from_fallback(self, year: int, call: CallInfo, now: datetime, why: str) -> str:
        log.warning("protocol from the local fallback range (store: %s)", why)
        protocol = await asyncio.to_thread(self._fallback.issue, year, call.unique_id, now)
        self._maybe_pending = True
        return protocol

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._late_answer)

    def _late_answer(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("late protocol allocation failed: %s", task.exception())

    def _reconciled(self, task: asyncio.Task[int]) -> None:
        self._reconciling = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("fallback protocols not reconciled yet: %s", task.exception())
