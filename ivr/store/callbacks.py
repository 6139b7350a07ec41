"""The call back book: call backs the IVR owes, kept in our store whatever back-end holds their tickets.

    schedule (on the call) -> `pending` -> claimed by one unit (`dialling`, lease, attempt row) -> Originate
                                 ^                                                                  |
                                 +--- next_attempt_at = end + spacing <--- busy, no answer, failed, unknown
                                                      after the last attempt: `given_up`;  answered: `answered`

A unit claims a row by one conditional UPDATE (still `pending` and due), which only one unit can win:
SQLite serialises writers (``BEGIN IMMEDIATE``, ivr.store.db) and PostgreSQL re-checks the condition on
the locked row. The attempt row (its ActionID and channel id) is written in the same transaction, before
the Originate is sent, so whoever finds a `dialling` row whose lease ran out knows which call to look for
before deciding anything: an Originate is never sent again blindly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ivr import phone
from ivr.clock import Clock
from ivr.config import CallbackSettings
from ivr.engine.operations import BackendError
from ivr.engine.ports import CallbackRequest
from ivr.engine.verbs.hours import DAYS, parse_spans
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import AttemptOutcome, Callback, CallbackAttempt, CallbackState
from ivr.text import replace_controls

log = logging.getLogger(__name__)

_CANDIDATES = 20  # due rows looked at per claim (those outside their window are skipped)
#: States an operator may cancel, and retry.
CANCELLABLE = (CallbackState.PENDING, CallbackState.DIALLING, CallbackState.GIVEN_UP)
RETRYABLE = (CallbackState.PENDING, CallbackState.GIVEN_UP, CallbackState.CANCELLED)


class CallbackRefused(ValueError):
    """An operator's cancel or retry that the call back's state does not allow (or no such call back)."""


@dataclass(frozen=True, slots=True)
class Dial:
    """One attempt a unit owns: what to dial and the context the customer takes to the queue."""

    callback_id: int
    attempt_id: int
    attempt: int  # 1, 2, 3... since the call back was (re)scheduled
    action_id: str
    channel_id: str
    number: str
    team: str
    protocol: str
    customer_id: int | None
    customer_name: str
    caller_id: str | None
    path: str
    tickets: str


@dataclass(frozen=True, slots=True)
class Listed:
    id: int
    protocol: str
    ticket_number: str
    number_masked: str
    team: str
    reason: str
    state: CallbackState
    attempts: int
    last_outcome: str
    next_attempt_at: datetime
    created_at: datetime


def window_for(team: str, conf: CallbackSettings) -> dict[str, Any]:
    """The team's hours as stored on a call back ({} = 24x7)."""
    schedule = conf.hours.get(team)
    return {"schedule": dict(schedule), "holidays": True} if schedule else {}


def inside(window: dict[str, Any], moment: datetime) -> bool:
    """Whether `moment` (local time) falls in `window`: a weekday span of its schedule, not a national
    holiday. A named day beats weekdays/every_day, as in the flows' `hours`."""
    schedule: dict[str, str] = window.get("schedule") or {}
    if not schedule:
        return True
    if window.get("holidays", True) and moment.date() in holidays.country_holidays("BR", years=moment.year):
        return False
    weekday = moment.weekday()
    for key in (DAYS[weekday], "weekdays" if weekday < 5 else None, "every_day"):
        if key and key in schedule:
            now = moment.time().replace(tzinfo=None)
            return any(start <= now < end for start, end in parse_spans(schedule[key]))
    return False


class StoreCallbackBook:
    """`ivr.engine.ports.CallbackBook` over the store, and what the dialer and operators do with it."""

    def __init__(self, store: Store, *, clock: Clock, conf: CallbackSettings, timezone: str) -> None:
        self._store = store
        self._clock = clock
        self._conf = conf
        self._zone = ZoneInfo(timezone)

    # --- the call (engine port) ------------------------------------------------------------------------

    async def schedule(self, request: CallbackRequest) -> int:
        number = phone.callback_number(request.number)
        if number is None:
            raise BackendError(f"call {request.protocol}: {phone.mask(request.number)} cannot be called back")
        now = self._clock()
        row = Callback(
            call_protocol=request.protocol,
            ticket_number=request.ticket_number[:40],
            number=number,
            team=request.team,
            customer_id=request.customer_id,
            customer_name=replace_controls(request.customer_name)[:200],  # PostgreSQL refuses a NUL in text
            caller_id=request.caller_id,
            path=request.path,
            tickets=request.tickets[:500],
            window=window_for(request.team, self._conf),
            reason=request.reason,
            state=CallbackState.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_owner="",
            last_outcome="",
            created_at=now,
            updated_at=now,
        )
        try:
            callback_id = await self._store.write(partial(_insert, row=row))
        except StoreUnavailable as exc:
            raise BackendError(str(exc)) from exc
        log.info(
            "call back #%d for call %s: %s, team %s (%s)",
            callback_id, request.protocol, phone.mask(number), request.team, request.reason,
        )  # fmt: skip
        return callback_id

    # --- the dialer ------------------------------------------------------------------------------------

    async def due_teams(self) -> list[str]:
        """Teams with a call back due now (inside or outside their window: the claim checks that)."""
        now = self._clock()
        return await self._store.read(
            lambda s: list(
                s.scalars(
                    select(Callback.team)
                    .where(Callback.state == CallbackState.PENDING, Callback.next_attempt_at <= now)
                    .distinct()
                    .order_by(Callback.team)
                ).all()
            )
        )

    async def claim(self, team: str, *, unit: str) -> Dial | None:
        """Take one due call back of `team` inside its window for `unit`, with its attempt written; None
        when there is none (or another unit won every one)."""
        return await self._store.write(partial(self._claim, team=team, unit=unit))

    def _claim(self, session: Session, *, team: str, unit: str) -> Dial | None:
        now = self._clock()
        due = (Callback.state == CallbackState.PENDING, Callback.next_attempt_at <= now)
        rows = session.execute(
            select(Callback.id, Callback.window)
            .where(Callback.team == team, *due)
            .order_by(Callback.next_attempt_at, Callback.id)
            .limit(_CANDIDATES)
        ).all()
        local = now.astimezone(self._zone)
        for callback_id, window in rows:
            if not inside(window or {}, local):
                continue
            won = session.execute(
                update(Callback)
                .where(Callback.id == callback_id, *due)
                .values(
                    state=CallbackState.DIALLING,
                    lease_owner=unit,
                    lease_until=now + timedelta(seconds=self._conf.lease_s),
                    attempts=Callback.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if won.rowcount == 1:  # type: ignore[attr-defined]
                return self._new_attempt(session, callback_id, unit=unit, now=now)
        return None

    def _new_attempt(self, session: Session, callback_id: int, *, unit: str, now: datetime) -> Dial:
        row = session.get_one(Callback, callback_id, populate_existing=True)
        tag = uuid.uuid4().hex[:12]
        attempt = CallbackAttempt(
            callback_id=callback_id,
            number=row.attempts,
            unit=unit[:120],
            action_id=f"sac-callback-{callback_id}-{row.attempts}-{tag}",
            channel_id=f"sac-callback-{callback_id}-{row.attempts}-{tag}",
            started_at=now,
            detail="",
        )
        session.add(attempt)
        session.flush()
        return _dial(row, attempt)

    async def release(self, dial: Dial, *, unit: str) -> None:
        """Give back a claim whose Originate was certainly never sent (no AMI connection): no attempt."""

        def release(session: Session) -> None:
            session.execute(delete(CallbackAttempt).where(CallbackAttempt.id == dial.attempt_id))
            session.execute(
                update(Callback)
                .where(*_held(dial.callback_id, unit))
                .values(
                    state=CallbackState.PENDING,
                    attempts=Callback.attempts - 1,
                    lease_owner="",
                    lease_until=None,
                    updated_at=self._clock(),
                )
                .execution_options(synchronize_session=False)
            )

        await self._store.write(release)

    async def hold(self, dial: Dial, *, unit: str) -> bool:
        """Extend `unit`'s lease while its call is still being looked for; False if it lost the row."""
        now = self._clock()
        extended = await self._store.write(
            lambda s: s.execute(
                update(Callback)
                .where(*_held(dial.callback_id, unit))
                .values(lease_until=now + timedelta(seconds=self._conf.lease_s), updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
        )
        return bool(extended)

    async def finish(self, dial: Dial, outcome: AttemptOutcome, detail: str, *, unit: str) -> CallbackState:
        """Store the attempt's outcome and what the call back does next: answered, given up after the
        last attempt, else pending again after the spacing."""
        return await self._store.write(partial(self._finish, dial=dial, outcome=outcome, detail=detail, unit=unit))

    def _finish(
        self, session: Session, *, dial: Dial, outcome: AttemptOutcome, detail: str, unit: str
    ) -> CallbackState:
        now = self._clock()
        session.execute(
            update(CallbackAttempt)
            .where(CallbackAttempt.id == dial.attempt_id)
            .values(outcome=outcome, detail=detail[:200], ended_at=now)
            .execution_options(synchronize_session=False)
        )
        row = session.get_one(Callback, dial.callback_id, populate_existing=True)
        if row.state is not CallbackState.DIALLING or row.lease_owner != unit:
            return row.state  # cancelled meanwhile, or another unit reconciled it: its decision stands
        if outcome is AttemptOutcome.ANSWERED:
            row.state = CallbackState.ANSWERED
        elif row.attempts >= self._conf.max_attempts:
            row.state = CallbackState.GIVEN_UP
        else:
            row.state = CallbackState.PENDING
            row.next_attempt_at = now + timedelta(seconds=self._conf.spacing_s)
        row.last_outcome = outcome.value
        row.lease_owner, row.lease_until, row.updated_at = "", None, now
        return row.state

    async def take_over_expired(self, *, unit: str) -> list[Dial]:
        """`dialling` rows whose lease ran out (their unit died or lost the store), now leased to `unit`
        with the attempt in flight: reconcile each before anything is dialled again."""
        return await self._store.write(partial(self._take_over, unit=unit))

    def _take_over(self, session: Session, *, unit: str) -> list[Dial]:
        now = self._clock()
        expired = (Callback.state == CallbackState.DIALLING, Callback.lease_until <= now)
        taken: list[Dial] = []
        for callback_id in session.scalars(select(Callback.id).where(*expired).limit(_CANDIDATES)).all():
            won = session.execute(
                update(Callback)
                .where(Callback.id == callback_id, *expired)
                .values(lease_owner=unit, lease_until=now + timedelta(seconds=self._conf.lease_s), updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                continue
            row = session.get_one(Callback, callback_id, populate_existing=True)
            attempt = session.scalars(
                select(CallbackAttempt)
                .where(CallbackAttempt.callback_id == callback_id)
                .order_by(CallbackAttempt.id.desc())
                .limit(1)
            ).first()
            if attempt is not None:
                taken.append(_dial(row, attempt))
        return taken

    # --- operators -------------------------------------------------------------------------------------

    async def owed_by_team(self) -> dict[str, int]:
        """Call backs still owed (waiting for an attempt, or being dialled) per team: the live model's."""
        owed = (CallbackState.PENDING, CallbackState.DIALLING)
        return await self._store.read(
            lambda s: {
                team: n
                for team, n in s.execute(
                    select(Callback.team, func.count()).where(Callback.state.in_(owed)).group_by(Callback.team)
                )
            }
        )

    async def listed(self, states: Sequence[CallbackState] = ()) -> list[Listed]:
        def read(session: Session) -> list[Listed]:
            query = select(Callback).order_by(Callback.id)
            if states:
                query = query.where(Callback.state.in_(list(states)))
            return [
                Listed(
                    id=row.id,
                    protocol=row.call_protocol,
                    ticket_number=row.ticket_number,
                    number_masked=phone.mask(row.number),
                    team=row.team,
                    reason=row.reason,
                    state=row.state,
                    attempts=row.attempts,
                    last_outcome=row.last_outcome,
                    next_attempt_at=row.next_attempt_at,
                    created_at=row.created_at,
                )
                for row in session.scalars(query)
            ]

        return await self._store.read(read)

    async def attempts(self, callback_id: int) -> list[tuple[int, AttemptOutcome | None, str]]:
        """(attempt number, outcome, detail) of one call back, oldest first."""
        return await self._store.read(
            lambda s: [
                (a.number, a.outcome, a.detail)
                for a in s.scalars(
                    select(CallbackAttempt)
                    .where(CallbackAttempt.callback_id == callback_id)
                    .order_by(CallbackAttempt.id)
                )
            ]
        )

    async def cancel(self, callback_id: int) -> None:
        """No further attempt (one already ringing ends by itself)."""
        await self._store.write(partial(self._set, callback_id=callback_id, allowed=CANCELLABLE, retry=False))

    async def retry(self, callback_id: int) -> None:
        """Pending again, due now, with a fresh set of attempts."""
        await self._store.write(partial(self._set, callback_id=callback_id, allowed=RETRYABLE, retry=True))

    def _set(self, session: Session, *, callback_id: int, allowed: tuple[CallbackState, ...], retry: bool) -> None:
        row = session.get(Callback, callback_id, with_for_update=True)
        if row is None:
            raise CallbackRefused(f"no call back #{callback_id}")
        if row.state not in allowed:
            raise CallbackRefused(f"call back #{callback_id} is {row.state.value}")
        now = self._clock()
        if retry:
            row.state, row.attempts, row.next_attempt_at = CallbackState.PENDING, 0, now
        else:
            row.state = CallbackState.CANCELLED
        row.lease_owner, row.lease_until, row.updated_at = "", None, now


def _insert(session: Session, *, row: Callback) -> int:
    session.add(row)
    session.flush()
    return row.id


def _held(callback_id: int, unit: str) -> tuple[Any, ...]:
    return (Callback.id == callback_id, Callback.state == CallbackState.DIALLING, Callback.lease_owner == unit)


def _dial(row: Callback, attempt: CallbackAttempt) -> Dial:
    return Dial(
        callback_id=row.id,
        attempt_id=attempt.id,
        attempt=attempt.number,
        action_id=attempt.action_id,
        channel_id=attempt.channel_id,
        number=row.number,
        team=row.team,
        protocol=row.call_protocol,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        caller_id=row.caller_id,
        path=row.path,
        tickets=row.tickets,
    )
