"""`ivr.engine.ports.CallRecorder` over the store: one `calls` row per call.

Rows travel through the event sink's buffer (in order with the call's node visits), so recording a
call never waits for the store and survives an outage like the visits do. The caller's number is
stored normalised (ivr.phone); it is masked only in logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ivr import phone
from ivr.clock import Clock
from ivr.engine.ports import CallInfo
from ivr.store.db import Store
from ivr.store.events import Rank, RecordKind, StoreEventSink
from ivr.store.models import Call
from ivr.store.pointread import Inserted
from ivr.text import replace_controls

#: The outcome of a call whose process died before it ended (its end, unknown, stays empty).
LOST = "lost"
_STARTED = ("caller_id", "dialled", "unique_id", "linked_id", "channel", "flow", "flow_version", "started_at")
_ENDED = ("ended_at", "outcome", "variables", "customer_id", "customer_name")


@cache
def _upsert(dialect: str, columns: tuple[str, ...]) -> Inserted:
    """Insert a call's row, or set `columns` on the row its protocol already has."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Call)
    return statement.on_conflict_do_update(
        index_elements=[Call.protocol], set_={name: statement.excluded[name] for name in columns}
    )


@dataclass(frozen=True, slots=True)
class _CallStarted:
    kind: ClassVar[RecordKind] = RecordKind("call start", Rank.CALL_START, lambda d: _upsert(d, _STARTED))
    protocol: str
    call: CallInfo
    flow: str
    flow_version: str
    at: datetime

    def row(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "caller_id": phone.normalise(self.call.caller_id),
            "dialled": self.call.dialled[:40],
            "unique_id": self.call.unique_id[:64],
            "linked_id": self.call.linked_id[:64],
            "channel": self.call.channel_name[:120],
            "flow": self.flow[:80],
            "flow_version": self.flow_version[:40],
            "started_at": self.at,
            "ended_at": None,
            "outcome": "",
            "variables": {},
            "customer_id": None,
            "customer_name": "",
        }


@dataclass(frozen=True, slots=True)
class _CallEnded:
    kind: ClassVar[RecordKind] = RecordKind("call end", Rank.CALL_END, lambda d: _upsert(d, _ENDED))
    protocol: str
    outcome: str
    variables: dict[str, Any]
    customer_id: int | None
    customer_name: str
    at: datetime

    def row(self) -> dict[str, Any]:
        # A new row only when the start record was dropped: keep what we know, started_at included.
        return {
            "protocol": self.protocol,
            "caller_id": None,
            "dialled": "",
            "unique_id": "",
            "linked_id": "",
            "channel": "",
            "flow": "",
            "flow_version": "",
            "started_at": self.at,
            "ended_at": self.at,
            "outcome": self.outcome[:80],
            "variables": self.variables,
            "customer_id": self.customer_id,
            "customer_name": replace_controls(self.customer_name)[:200],  # PostgreSQL refuses a NUL in text
        }


class StoreCallRecorder:
    def __init__(self, sink: StoreEventSink, *, clock: Clock) -> None:
        self._sink = sink
        self._clock = clock

    async def call_started(self, protocol: str, call: CallInfo, flow: str, flow_version: str) -> None:
        self._sink.record(_CallStarted(protocol, call, flow, flow_version, self._clock()))

    async def call_ended(
        self,
        protocol: str,
        outcome: str,
        variables: dict[str, Any],
        *,
        customer_id: int | None = None,
        customer_name: str = "",
    ) -> None:
        # JSON-safe now (dates, Decimals become text), so a bad value cannot fail the batch later.
        safe = json.loads(json.dumps(variables, default=str))
        self._sink.record(_CallEnded(protocol, outcome, safe, customer_id, customer_name, self._clock()))


async def mark_lost_calls(store: Store, *, started_before: datetime) -> int:
    """Give the outcome `LOST` to calls left open (no end, no outcome) that started before `started_before`;
    returns how many.

    Several units may share the store, and the row does not say which unit a call is on, so only calls no
    unit can still be carrying are marked: `started_before` is this process's start minus Asterisk's hard
    bound on a call (``asterisk.max_call_s``, TIMEOUT(absolute) in the dialplan), by which every channel has
    hung up. A unit whose end record was only delayed (a store outage) still writes it: the upsert of the
    call's end replaces `LOST` with the real outcome.
    """

    def mark(session: Session) -> int:
        open_before = (Call.ended_at.is_(None), Call.outcome == "", Call.started_at < started_before)
        marked = session.execute(update(Call).where(*open_before).values(outcome=LOST))
        return int(marked.rowcount)  # type: ignore[attr-defined]

    return await store.write(mark)
