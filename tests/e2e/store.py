"""What the IVR stored about its calls, read straight from its SQLite file (test-side, plain SQL).

Rows reach the store in batches (the event sink), so readers wait for them, bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class StoredCall:
    protocol: str
    caller_id: str | None
    channel: str
    unique_id: str
    linked_id: str
    outcome: str
    ended: bool
    path: list[str]  # node names in visit order; subflow nodes as "flow/node"
    visits: list[tuple[str, str, str]]  # (node as in `path`, input, outcome) in visit order
    tickets: list[tuple[str, str]]  # (number, kind) opened on the call
    dialled: str = ""  # the SAC number in the form the caller dialled


class StoreReader:
    def __init__(self, database: Path) -> None:
        self.database = database

    def _query(self, sql: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(sql, params).fetchall()

    def protocols(self) -> set[str]:
        return {row[0] for row in self._query("SELECT protocol FROM calls")}

    def call(self, protocol: str) -> StoredCall:
        rows = self._query(
            "SELECT protocol, caller_id, channel, unique_id, linked_id, outcome, ended_at, flow, dialled FROM calls "
            "WHERE protocol = ?",
            protocol,
        )
        if not rows:
            raise LookupError(f"no call {protocol} in the store")
        protocol, caller_id, channel, unique_id, linked_id, outcome, ended_at, flow, dialled = rows[0]
        visits = self._query(
            "SELECT flow, node, input, outcome FROM node_visits WHERE call_protocol = ? ORDER BY id", protocol
        )
        named = [(node if f == flow else f"{f}/{node}", given, result) for f, node, given, result in visits]
        tickets = self._query("SELECT number, kind FROM tickets WHERE call_protocol = ? ORDER BY id", protocol)
        return StoredCall(
            protocol=protocol,
            caller_id=caller_id,
            channel=channel,
            unique_id=unique_id,
            linked_id=linked_id,
            outcome=outcome,
            ended=ended_at is not None,
            path=[name for name, _, _ in named],
            visits=named,
            tickets=[(number, kind) for number, kind in tickets],
            dialled=dialled,
        )

    def ticket_description(self, number: str) -> str:
        rows = self._query("SELECT description FROM tickets WHERE number = ?", number)
        if not rows:
            raise LookupError(f"no ticket {number} in the store")
        return str(rows[0][0])

    def started_at(self, protocol: str) -> datetime:
        """When the call was answered (its protocol allocated), UTC."""
        (started,), = self._query("SELECT started_at FROM calls WHERE protocol = ?", protocol)
        return _utc(started)

    def timeline(self, protocol: str) -> list[tuple[str, datetime, float]]:
        """(node, started UTC, seconds spent) per node visit, in visit order (nodes named as in `path`)."""
        (flow,), = self._query("SELECT flow FROM calls WHERE protocol = ?", protocol)
        rows = self._query(
            "SELECT flow, node, started_at, duration_ms FROM node_visits WHERE call_protocol = ? ORDER BY id",
            protocol,
        )
        return [(node if f == flow else f"{f}/{node}", _utc(at), ms / 1000) for f, node, at, ms in rows]

    def overdue(self, cnpj: str) -> tuple[Decimal, date]:
        """An account's overdue total and the oldest overdue due date."""
        (total, oldest), = self._query(
            "SELECT sum(i.amount), min(i.due_date) FROM invoices i JOIN customers c ON c.id = i.customer_id "
            "WHERE c.cnpj = ? AND lower(i.status) = 'overdue'",
            cnpj,
        )
        return Decimal(str(total)).quantize(Decimal("0.01")), date.fromisoformat(oldest)

    def ticket_owner(self, number: str) -> int | None:
        rows = self._query("SELECT customer_id FROM tickets WHERE number = ?", number)
        return rows[0][0] if rows else None

    async def ended_calls(
        self, before: set[str], count: int, *, caller: str | None = None, timeout_s: float = 10.0
    ) -> list[StoredCall]:
        """The `count` calls (from `caller`, a normalised number, if given) stored since `before` (a
        snapshot of protocols), once all have ended."""

        def ready() -> list[StoredCall] | None:
            calls = [self.call(p) for p in sorted(self.protocols() - before)]
            calls = [c for c in calls if caller is None or c.caller_id == caller]
            return calls if len(calls) >= count and all(c.ended for c in calls) else None

        calls = await wait_for(ready, f"{count} ended call(s) in the store", timeout_s)
        assert len(calls) == count, f"expected {count} new call(s), the store has {len(calls)}"
        return calls


async def wait_for(probe: Callable[[], T | None], what: str, timeout_s: float) -> T:
    """Poll `probe` until it returns something (the store has no events to wait on); bounded."""
    try:
        async with asyncio.timeout(timeout_s):
            while (found := probe()) is None:
                await asyncio.sleep(0.1)
            return found
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout_s} s") from None


def _utc(stored: str) -> datetime:
    """SQLite keeps the store's UTC datetimes without a zone (ivr.store.models.UtcDateTime)."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)
