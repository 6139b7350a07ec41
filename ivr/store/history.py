"""What happened on calls, for operators (`ivr calls show|list`) and, later, the web console: plain
dataclasses read from the store, the caller's number and every recipient already masked.

A call is found by its protocol or by the number of a ticket opened on it. Listings read a span of calls
by their start (index `ix_calls_started_at`), newest first and bounded, so a store of a million calls
answers as fast as an empty one; a caller's calls are matched on the normalised number (its own index).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ivr import phone
from ivr.engine.context import Outcome
from ivr.store.db import Store
from ivr.store.models import Call, Callback, CallbackAttempt, NodeVisit, OutboxMessage, Ticket, mask_recipient

#: What a call's stored outcome `ended` means to a person: the flow said goodbye, nobody else was needed.
CONTAINED = "contained"


def outcome_shown(stored: str) -> str:
    """contained, queue:<team>, transfer:<number>, hangup, failed; "in progress" for a call not ended."""
    return CONTAINED if stored == Outcome.ENDED.value else stored or "in progress"


@dataclass(frozen=True, slots=True)
class Step:
    """One node of the call's path."""

    flow: str
    node: str
    verb: str
    input: str  # masked by the verb that took it
    outcome: str
    started_at: datetime
    duration_ms: int
    prompts: tuple[str, ...]  # prompt ids played at the node, digits masked (empty for visits before 0009)
    flow_version: str  # the content hash of the flow's text, as the engine ran it


@dataclass(frozen=True, slots=True)
class TicketOpened:
    number: str
    kind: str
    state: str


@dataclass(frozen=True, slots=True)
class MessageSent:
    channel: str
    recipient_masked: str
    template: str
    state: str  # pending, sent, failed
    attempts: int
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    started_at: datetime
    outcome: str  # "in flight" until known


@dataclass(frozen=True, slots=True)
class CallbackOwed:
    id: int
    team: str
    number_masked: str
    reason: str  # requested | dropped
    state: str
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class CallLine:
    """A call as one line of a listing."""

    protocol: str
    started_at: datetime
    caller_masked: str
    customer_id: int | None
    customer_name: str
    outcome: str  # as shown (outcome_shown)
    duration_s: float | None  # None while the call goes on

    @classmethod
    def of(cls, row: Call) -> CallLine:
        return cls(
            protocol=row.protocol,
            started_at=row.started_at,
            caller_masked=phone.mask(row.caller_id),
            customer_id=row.customer_id,
            customer_name=row.customer_name,
            outcome=outcome_shown(row.outcome),
            duration_s=(row.ended_at - row.started_at).total_seconds() if row.ended_at else None,
        )


@dataclass(frozen=True, slots=True)
class CallTrace:
    """One call from answer to end: `ivr calls show`."""

    call: CallLine
    ended_at: datetime | None
    flow: str
    flow_version: str
    linked_id: str  # joins Asterisk's CDR
    path: tuple[Step, ...]
    tickets: tuple[TicketOpened, ...]
    messages: tuple[MessageSent, ...]
    callbacks: tuple[CallbackOwed, ...]


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls `listed` returns: started in [since, until), newest first, at most `limit` after the
    newest `offset` (a page of a listing)."""

    since: datetime
    until: datetime | None = None
    caller: str | None = None  # as a person writes it; matched normalised
    outcome: str | None = None  # contained, hangup, failed, queue, queue:<team>, transfer, transfer:<number>
    limit: int = 50
    offset: int = 0


async def trace(store: Store, number: str) -> CallTrace | None:
    """The call with this protocol, or the one a ticket with this number was opened on; None if neither."""
    return await store.read(partial(_trace, number=number.strip()))


async def listed(store: Store, which: CallFilter) -> list[CallLine]:
    return await store.read(partial(_listed, which=which))


def _trace(session: Session, number: str) -> CallTrace | None:
    call = session.scalars(select(Call).where(Call.protocol == number)).one_or_none()
    if call is None:
        opened_on = select(Ticket.call_protocol).where(Ticket.number == number).scalar_subquery()
        call = session.scalars(select(Call).where(Call.protocol == opened_on)).one_or_none()
    if call is None:
        return None
    protocol = call.protocol
    visits = session.scalars(
        select(NodeVisit).where(NodeVisit.call_protocol == protocol).order_by(NodeVisit.started_at, NodeVisit.id)
    )
    tickets = session.scalars(select(Ticket).where(Ticket.call_protocol == protocol).order_by(Ticket.id))
    messages = session.scalars(
        select(OutboxMessage).where(OutboxMessage.call_protocol == protocol).order_by(OutboxMessage.id)
    )
    callbacks = session.scalars(select(Callback).where(Callback.call_protocol == protocol).order_by(Callback.id)).all()
    attempts = session.scalars(
        select(CallbackAttempt)
        .where(CallbackAttempt.callback_id.in_([c.id for c in callbacks]))
        .order_by(CallbackAttempt.number)
    ).all()
    return CallTrace(
        call=CallLine.of(call),
        ended_at=call.ended_at,
        flow=call.flow,
        flow_version=call.flow_version,
        linked_id=call.linked_id,
        path=tuple(
            Step(v.flow, v.node, v.verb, v.input, v.outcome, v.started_at, v.duration_ms, tuple(v.prompts or ()),
                 v.flow_version)
            for v in visits
        ),
        tickets=tuple(TicketOpened(t.number, t.kind.value, t.state.value) for t in tickets),
        messages=tuple(
            MessageSent(
                m.channel.value,
                mask_recipient(m.channel, m.recipient),
                m.template,
                m.state.value,
                m.attempts,
                m.sent_at,
            )
            for m in messages
        ),
        callbacks=tuple(
            CallbackOwed(
                c.id,
                c.team,
                phone.mask(c.number),
                c.reason,
                c.state.value,
                tuple(
                    Attempt(a.number, a.started_at, a.outcome.value if a.outcome else "in flight")
                    for a in attempts
                    if a.callback_id == c.id
                ),
            )
            for c in callbacks
        ),
    )


def _listed(session: Session, which: CallFilter) -> list[CallLine]:
    query = select(Call).where(Call.started_at >= which.since)
    if which.until is not None:
        query = query.where(Call.started_at < which.until)
    if which.caller is not None:
        query = query.where(Call.caller_id == (phone.normalise(which.caller) or which.caller.strip()))
    if which.outcome is not None:
        query = _with_outcome(query, which.outcome)
    newest = query.order_by(Call.started_at.desc(), Call.id.desc())
    rows = session.scalars(newest.offset(which.offset).limit(which.limit))
    return [CallLine.of(row) for row in rows]


def _with_outcome(query: Select[Call], outcome: str) -> Select[Call]:
    """`queue` and `transfer` alone take every team and number; `contained` is stored as `ended`."""
    if outcome in ("queue", "transfer"):
        return query.where(Call.outcome.startswith(f"{outcome}:", autoescape=True))
    return query.where(Call.outcome == (Outcome.ENDED.value if outcome == CONTAINED else outcome))
