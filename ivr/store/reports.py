"""Supervisors' figures over a span of calls (`ivr report`, later the web console): how calls ended, the
tickets they opened, their average time to an outcome, and the nodes where callers hang up or fail input.

Everything is counted in SQL, grouped, over the calls started in the span (index `ix_calls_started_at`);
Python only reads the few grouped rows back, so a day of a million-call store costs the day's rows, not
the store's. A month's drop-off per node would still join ~800,000 node visits to their calls
(0.6-0.8 s on PostgreSQL, bench/console_queries.py), so settled hours are rolled up by the hour of their
calls' start (`roll_up`, which `settled_report` runs first) and read back from `drop_off_hours`; the hours not
rolled up yet (today's, a span's ragged edges) are counted from the visits, and the figures are the same.

Days are the configured time zone's (a call at 23:30 in São Paulo is that day's, though it is the next day
in UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Select,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from ivr.engine.context import Outcome
from ivr.store.db import Store
from ivr.store.models import Call, DropOffHour, NodeVisit, Rollup, Ticket, UtcDateTime

#: Node-visit outcomes of a caller who did not give a usable answer (ivr.engine.verbs).
INPUT_FAILURES = ("no_input", "invalid", "no_match", "no_speech")
#: Node-visit outcomes of a node the engine could not get past (the call failed there).
NODE_FAILURES = ("error", "timeout")
#: An hour is rolled up (`roll_up`) this long after it ended: its calls have ended, their visits are stored.
SETTLED = timedelta(days=1)
_ROLLED = "drop_off_hours"  # the roll-up's name in `rollups`
_HOUR = timedelta(hours=1)
_ROLL_LOCK = 0x5AC1_0002  # PostgreSQL advisory lock: two reports rolling up at once take turns
_COUNTS = (DropOffHour.visits, DropOffHour.hung_up, DropOffHour.input_failed, DropOffHour.failed)
#: Calls handed to a person: a queue's team, or an outside number (the negotiation line).
_HANDED_OVER = (Outcome.QUEUE.value, Outcome.TRANSFER.value)


@dataclass(frozen=True, slots=True)
class DropOff:
    """A node where calls ended badly: callers hung up on it, failed its input, or the call failed there."""

    flow: str
    node: str
    visits: int
    hung_up: int
    input_failed: int
    failed: int

    @property
    def share(self) -> float:
        """Of the node's visits, the share that dropped off there (0..1)."""
        return (self.hung_up + self.input_failed + self.failed) / self.visits


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime  # excluded
    flow: str | None  # None: every flow
    calls: int
    contained: int  # ended by the flow, nobody else needed
    abandoned: int  # the caller hung up
    transferred: tuple[tuple[str, int], ...]  # ("queue:technical", n), ("transfer:+553131958012", n)...
    failed: int
    in_progress: int  # started, not (yet) ended
    tickets: tuple[tuple[str, int], ...]  # opened per kind
    average_s: float | None  # from answer to outcome, over the calls ended
    drop_off: tuple[DropOff, ...]  # most dropped first

    @property
    def transferred_total(self) -> int:
        return sum(count for _, count in self.transferred)


def local_days(first: date, days: int, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of `days` calendar days from `first`, midnight to midnight in `timezone`."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(), zone)
    return start, datetime.combine(first + timedelta(days=days), time(), zone)


async def report(store: Store, since: datetime, until: datetime, *, flow: str | None = None) -> Report:
    return await store.read(partial(_report, since=since, until=until, flow=flow, dialect=store.dialect))


async def settled_report(
    store: Store, since: datetime, until: datetime, *, flow: str | None = None, now: datetime
) -> Report:
    """The figures `ivr report` and the web console show: the settled hours not rolled up yet are rolled up
    first (`roll_up`: a month then reads them back), so both read the same way and give the same figures."""
    await roll_up(store, before=now - SETTLED)
    return await report(store, since, until, flow=flow)


def _report(session: Session, since: datetime, until: datetime, flow: str | None, dialect: str) -> Report:
    spanned = _spanned(since, until, flow)
    seconds = _seconds(Call.started_at, Call.ended_at, dialect)
    outcomes = session.execute(
        select(Call.outcome, func.count(), func.count(Call.ended_at), func.sum(seconds))
        .where(*spanned)
        .group_by(Call.outcome)
    ).all()
    by_outcome = {outcome: count for outcome, count, _, _ in outcomes}
    ended = sum(count for _, _, count, _ in outcomes)
    total_s = sum(float(spent or 0) for _, _, _, spent in outcomes)
    tickets = session.execute(
        select(Ticket.kind, func.count())
        .join(Call, Call.protocol == Ticket.call_protocol)
        .where(*spanned)
        .group_by(Ticket.kind)
        .order_by(func.count().desc(), Ticket.kind)
    ).all()
    return Report(
        since=since,
        until=until,
        flow=flow,
        calls=sum(by_outcome.values()),
        contained=by_outcome.get(Outcome.ENDED.value, 0),
        abandoned=by_outcome.get(Outcome.HANGUP.value, 0),
        transferred=tuple(
            sorted(
                ((o, n) for o, n in by_outcome.items() if o.partition(":")[0] in _HANDED_OVER),
                key=lambda pair: (-pair[1], pair[0]),
            )
        ),
        failed=by_outcome.get(Outcome.FAILED.value, 0),
        in_progress=by_outcome.get("", 0),
        tickets=tuple((kind.value, count) for kind, count in tickets),
        average_s=total_s / ended if ended else None,
        drop_off=_drop_off(session, since, until, flow),
    )


def _drop_off(session: Session, since: datetime, until: datetime, flow: str | None) -> tuple[DropOff, ...]:
    """Whole hours already rolled up are read from `drop_off_hours`, the rest from the node visits."""
    mark = session.get(Rollup, _ROLLED)
    first = _hour_ceil(since)
    last = min(_hour_floor(until), mark.rolled_until) if mark else first
    if last <= first:
        parts = [_visits_counted(since, until, flow)]
    else:
        rolled = select(DropOffHour.flow, DropOffHour.node, *(func.sum(c) for c in _COUNTS)).where(
            DropOffHour.hour >= first,
            DropOffHour.hour < last,
            *([DropOffHour.call_flow == flow] if flow is not None else []),
        )
        parts = [
            *([_visits_counted(since, first, flow)] if since < first else []),
            rolled.group_by(DropOffHour.flow, DropOffHour.node),
            *([_visits_counted(last, until, flow)] if last < until else []),
        ]
    counts = union_all(*parts).subquery()
    visits, hung_up, input_failed, failed = (cast(func.sum(counts.c[i + 2]), BigInteger) for i in range(4))
    dropped = hung_up + input_failed + failed
    rows = session.execute(
        select(counts.c[0], counts.c[1], visits, hung_up, input_failed, failed)
        .group_by(counts.c[0], counts.c[1])
        .having(dropped > 0)
        .order_by(dropped.desc(), counts.c[0], counts.c[1])
    ).all()
    return tuple(DropOff(*row) for row in rows)


def _visits_counted(since: datetime, until: datetime, flow: str | None, *by: Any) -> Select[*tuple[Any, ...]]:
    """The node visits of the calls started in [since, until), counted per (`by`,) flow and node."""

    def counted(outcomes: tuple[str, ...]) -> Any:
        return func.sum(case((NodeVisit.outcome.in_(outcomes), 1), else_=0))

    return (
        select(*by, NodeVisit.flow, NodeVisit.node, func.count(), counted(("hangup",)))
        .add_columns(counted(INPUT_FAILURES), counted(NODE_FAILURES))
        .join(Call, Call.protocol == NodeVisit.call_protocol)
        # No visit starts before its call: the bound lets the store use the visits' own time index too.
        .where(*_spanned(since, until, flow), NodeVisit.started_at >= since)
        .group_by(*by, NodeVisit.flow, NodeVisit.node)
    )


def _spanned(since: datetime, until: datetime, flow: str | None) -> list[ColumnElement[bool]]:
    return [Call.started_at >= since, Call.started_at < until, *([Call.flow == flow] if flow is not None else [])]


async def roll_up(store: Store, before: datetime) -> int:
    """Roll up the drop-off of every hour not yet rolled up that ends by `before`; returns how many hours.

    Only settled hours belong here (`SETTLED` ago: their calls have ended and their visits reached the
    store): a visit written after its hour was rolled up is not counted in reports that read the roll-up.
    The first run rolls up from the store's first call; one transaction per day of hours.
    """
    start, end = await store.read(partial(_to_roll, before=before))
    hours = 0
    while start < end:  # bounded: one turn per day between start and end
        stop = min(start + timedelta(days=1), end)
        await store.write(partial(_roll, since=start, until=stop))
        hours += (stop - start) // _HOUR
        start = stop
    return hours


def _to_roll(session: Session, before: datetime) -> tuple[datetime, datetime]:
    mark = session.get(Rollup, _ROLLED)
    if mark is not None:
        start = mark.rolled_until
    else:
        first = session.scalar(select(func.min(Call.started_at)))
        start = _hour_floor(first or before)
    return start, max(start, _hour_floor(before))


def _roll(session: Session, since: datetime, until: datetime) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_ROLL_LOCK)))  # SQLite's writers already take turns
    mark = session.get(Rollup, _ROLLED)
    if mark is not None and mark.rolled_until >= until:
        return  # another report rolled these hours up while this one waited
    session.execute(delete(DropOffHour).where(DropOffHour.hour >= since, DropOffHour.hour < until))
    columns = ["hour", "call_flow", "flow", "node", "visits", "hung_up", "input_failed", "failed"]
    for n in range((until - since) // _HOUR):
        hour = since + n * _HOUR
        counted = _visits_counted(hour, hour + _HOUR, None, literal(hour, UtcDateTime), Call.flow)
        session.execute(insert(DropOffHour).from_select(columns, counted))
    if mark is None:
        session.add(Rollup(name=_ROLLED, rolled_until=until))
    else:
        mark.rolled_until = until


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + _HOUR


def _seconds(start: Any, end: Any, dialect: str) -> ColumnElement[float]:
    """`end - start` in seconds, in the store's SQL (SQLite keeps times as text)."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


CSV_HEADER = ("section", "name", "value", "percent")


def csv_rows(figures: Report, *, timezone: str, negotiation_number: str) -> list[tuple[str, str, str, str]]:
    """The figures as (section, name, value, percent) for a spreadsheet (`ivr report --csv`, the web
    console's download): outcomes as shares of the calls, drop-off as shares of the node's visits."""

    def of_calls(section: str, name: str, count: int) -> tuple[str, str, str, str]:
        return section, name, str(count), percent(count, figures.calls)

    average = "" if figures.average_s is None else f"{figures.average_s:.1f}"
    return [
        ("span", "local", f"{figures.since:%Y-%m-%d %H:%M} - {figures.until:%Y-%m-%d %H:%M} {timezone}", ""),
        ("span", "flow", figures.flow or "all", ""),
        of_calls("calls", "all", figures.calls),
        of_calls("outcome", "contained", figures.contained),
        of_calls("outcome", "abandoned", figures.abandoned),
        of_calls("outcome", "transferred", figures.transferred_total),
        of_calls("outcome", "failed", figures.failed),
        of_calls("outcome", "in progress", figures.in_progress),
        *(
            of_calls("transferred", transfer_reason(name, negotiation_number), count)
            for name, count in figures.transferred
        ),
        *(("tickets", kind, str(count), "") for kind, count in figures.tickets),
        ("time to outcome", "average seconds", average, ""),
        *(
            (f"drop-off {what}", f"{node.flow}/{node.node}", str(count), percent(count, node.visits))
            for node in figures.drop_off
            for what, count in (("hung up", node.hung_up), ("input failed", node.input_failed), ("failed", node.failed))
        ),
    ]


def transfer_reason(name: str, negotiation_number: str) -> str:
    """A transfer to the negotiation line says so beside its number."""
    return f"{name} (negotiation line)" if name == f"transfer:{negotiation_number}" else name


def percent(count: int, of: int) -> str:
    return f"{100 * count / of:.1f}" if of else "0.0"
