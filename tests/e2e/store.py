"""What the IVR stored about its calls, read straight from its SQLite file (test-side, plain SQL).

Rows reach the store in batches (the event sink), so readers wait for them, bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
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
            "SELECT protocol, caller_id, channel, unique_id, linked_id, outcome, ended_at, flow FROM calls "
            "WHERE protocol = ?",
            protocol,
        )
        if not rows:
            raise LookupError(f"no call {protocol} in the store")
        protocol, caller_id, channel, unique_id, linked_id, outcome, ended_at, flow = rows[0]
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
        )

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
