"""The recorded calls `ivr flow impact` replays (`ivr.flows.impact`): each ended call of a span with its
node visits in order, the caller's number as stored (normalised, not masked: the replay calls from it)."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.flows.impact import RecordedCall, RecordedVisit
from ivr.store.db import Store
from ivr.store.models import Call, NodeVisit

#: Protocols per query of their visits: well under SQLite's oldest limit of bound parameters (999).
_CHUNK = 500


async def recorded_calls(
    store: Store, since: datetime, until: datetime, *, limit: int
) -> tuple[int, list[RecordedCall]]:
    """How many calls started in [since, until) and ended, and the newest `limit` of them."""
    return await store.read(partial(_recorded, since=since, until=until, limit=limit))


def _recorded(session: Session, since: datetime, until: datetime, limit: int) -> tuple[int, list[RecordedCall]]:
    spanned = (Call.started_at >= since, Call.started_at < until, Call.ended_at.is_not(None))
    count = session.scalar(select(func.count()).select_from(Call).where(*spanned)) or 0
    newest = select(Call).where(*spanned).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    rows = list(session.scalars(newest))
    visits: dict[str, list[RecordedVisit]] = {row.protocol: [] for row in rows}
    protocols = list(visits)
    for start in range(0, len(protocols), _CHUNK):
        chunk = protocols[start : start + _CHUNK]
        query = select(NodeVisit).where(NodeVisit.call_protocol.in_(chunk)).order_by(NodeVisit.id)
        for visit in session.scalars(query):
            visits[visit.call_protocol].append(
                RecordedVisit(visit.flow, visit.node, visit.verb, visit.input, visit.outcome)
            )
    calls = [
        RecordedCall(
            protocol=row.protocol,
            flow=row.flow,
            started_at=row.started_at,
            caller_id=row.caller_id,
            identified=row.customer_id is not None,
            outcome=row.outcome,
            visits=tuple(visits[row.protocol]),
        )
        for row in rows
    ]
    return count, calls
