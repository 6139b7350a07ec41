"""`ivr.engine.services.CallRecorder` over the store: one `calls` row per call.

Rows travel through the event sink's buffer (in order with the call's node visits), so recording a
call never waits for the store and survives an outage like the visits do. The caller's number is
stored normalised (ivr.phone); it is masked only in logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr import phone
from ivr.engine.channel import CallInfo
from ivr.store.events import StoreEventSink
from ivr.store.models import Call


@dataclass(frozen=True, slots=True)
class _CallStarted:
    protocol: str
    call: CallInfo
    flow: str
    flow_version: str
    at: datetime

    def apply(self, session: Session) -> None:
        row = _row(session, self.protocol)
        row.caller_id = phone.normalise(self.call.caller_id)
        row.dialled = self.call.dialled[:40]
        row.unique_id = self.call.unique_id[:64]
        row.linked_id = self.call.linked_id[:64]
        row.channel = self.call.channel_name[:120]
        row.flow = self.flow[:80]
        row.flow_version = self.flow_version[:40]
        row.started_at = self.at


@dataclass(frozen=True, slots=True)
class _CallEnded:
    protocol: str
    outcome: str
    variables: dict[str, Any]
    at: datetime

    def apply(self, session: Session) -> None:
        row = _row(session, self.protocol)
        if row.started_at is None:  # the start record was dropped: keep what we know
            row.started_at = self.at
        row.ended_at = self.at
        row.outcome = self.outcome[:80]
        row.variables = self.variables


def _row(session: Session, protocol: str) -> Call:
    row = session.scalars(select(Call).where(Call.protocol == protocol)).one_or_none()
    if row is None:
        row = Call(protocol=protocol, variables={})
        session.add(row)
    return row


class StoreCallRecorder:
    def __init__(self, sink: StoreEventSink, *, clock: Callable[[], datetime] | None = None) -> None:
        self._sink = sink
        self._clock = clock or (lambda: datetime.now(UTC))

    async def call_started(self, protocol: str, call: CallInfo, flow: str, flow_version: str) -> None:
        self._sink.record(_CallStarted(protocol, call, flow, flow_version, self._clock()))

    async def call_ended(self, protocol: str, outcome: str, variables: dict[str, Any]) -> None:
        # JSON-safe now (dates, Decimals become text), so a bad value cannot fail the batch later.
        safe = json.loads(json.dumps(variables, default=str))
        self._sink.record(_CallEnded(protocol, outcome, safe, self._clock()))
