"""The console's queries over a year of a busy SAC, on SQLite and on PostgreSQL.

Seeds a year of calls (default 1,000,000) with their node visits and tickets into a fresh, migrated store
of each kind, then times the queries the console runs, through the store's own functions:

* ``trace`` (ivr.store.history): one call by its protocol, and by the number of a ticket opened on it;
* ``listed``: the calls of the busiest caller over the year (newest 50), and a day's newest 50;
* ``report`` (ivr.store.reports) over the busiest day and over its month (São Paulo days);
* the report's drop-off per node alone, over that day and that month.

Each query runs once to warm up, then 5 times; the median is printed beside the 0.5 s goal.

The year: calls spread over 2026 by weekday (Saturdays lighter, Sundays lightest) and by hour (business
hours heaviest); ~10 node visits a call, random walks over flows/sac.yaml's real nodes and verbs; outcomes
contained, queue:technical/billing/commercial, transfer, hangup and failed; ~30% of calls open a ticket;
callers drawn from a pool where a few call often (a Zipf-like weight), 70% of calls identified. Every day
is drawn from its own seeded generator, so both stores get the same calls.

Seeding: SQLite through sqlite3's executemany in one transaction per day (synchronous and journal off for
the seed only); PostgreSQL through asyncpg's COPY, on a throw-away server (tests/postgres.py) on loopback,
in a temporary directory removed at the end. Both are ANALYZEd after the seed (PostgreSQL: VACUUM ANALYZE,
what autovacuum would have done by then); the seed's time is reported apart.

Run from the repo root:  .venv/bin/python bench/console_queries.py [--calls 100000] [--only postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.postgres: the suite's throw-away PostgreSQL server

from ivr.protocol_number import make_call_protocol, make_ticket_number  # noqa: E402
from ivr.store.db import Store  # noqa: E402
from ivr.store.history import CallFilter, listed, trace  # noqa: E402
from ivr.store.migrate import upgrade  # noqa: E402
from ivr.store.reports import _drop_off, local_days, report, roll_up  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

GOAL_S = 0.5
RUNS = 5
YEAR = 2026
ZONE = "America/Sao_Paulo"
LOCAL = timezone(timedelta(hours=-3))  # São Paulo has had no summer time since 2019
FLOW, FLOW_VERSION = "sac", "bench"
CUSTOMERS = 20_000
WALKS = 4_000  # distinct paths through the flow, drawn once
VISITS = (6, 16)  # a walk's length is drawn in this range (~10 visits a call), or it ends at a call's end
ENDS = ("queue", "transfer", "hangup")
#: Share of a week's calls per weekday (Monday first) and of a day's per local hour.
WEEKDAY = (1.15, 1.05, 1.0, 1.0, 0.95, 0.45, 0.25)
HOURLY = (1, 1, 1, 1, 1, 2, 4, 10, 30, 45, 48, 44, 32, 36, 44, 42, 38, 30, 16, 10, 7, 5, 3, 2)
#: Stored call outcomes ("ended" is shown as contained) and their weights.
OUTCOMES = (
    ("ended", 34),
    ("queue:technical", 22),
    ("queue:billing", 10),
    ("queue:commercial", 4),
    ("transfer:+553131958012", 2),
    ("hangup", 24),
    ("failed", 2),
)
TICKET_KINDS = {
    "queue:billing": ("billing_doubt", "billing_dispute", "boleto_copy", "nota_fiscal_copy", "due_date_change"),
    "queue:commercial": ("cancellation", "complaint"),
}
OTHER_TICKETS = ("technical_failure",) * 6 + ("service_request", "complaint")
TICKET_STATES = ("open", "in_progress", "waiting_customer", "resolved", "closed")
TICKET_SHARE = 0.30
IDENTIFIED_SHARE = 0.70
INPUT_VERBS = ("menu", "collect", "recognise", "confirm")

CALL_COLUMNS = (
    "protocol", "caller_id", "dialled", "unique_id", "linked_id", "channel", "flow", "flow_version",
    "started_at", "ended_at", "outcome", "variables", "customer_id", "customer_name",
)  # fmt: skip
VISIT_COLUMNS = (
    "call_protocol", "flow", "flow_version", "node", "verb", "input", "outcome", "started_at", "duration_ms",
)  # fmt: skip
TICKET_COLUMNS = (
    "number", "customer_id", "kind", "state", "symptom", "description", "call_protocol", "created_at",
    "updated_at",
)  # fmt: skip
CUSTOMER_COLUMNS = ("cnpj", "cnpj_root", "code", "name", "status", "created_at")


# --- the year ---------------------------------------------------------------------------------------------

Step = tuple[str, str, str, str]  # node, verb, input, outcome


def flow_walks(path: Path, count: int, rng: random.Random) -> list[list[Step]]:
    """`count` random walks from the flow's start over its real nodes, each leaving a node by one of its
    targets (the label it is left by is the visit's outcome, as the engine records it)."""
    flow = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    nodes: dict[str, dict[str, Any]] = flow["nodes"]

    def exits(value: Any, label: str) -> Iterator[tuple[str, str]]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from exits(inner, label if key == "go" else str(key))
        elif isinstance(value, list):
            for inner in value:
                yield from exits(inner, label)
        elif isinstance(value, str) and value in nodes:
            yield (value if label in ("next", "go", "else", "then", "") else label), value

    graph = {
        name: (next(k for k in node if k != "next"), list(exits(node, ""))) for name, node in nodes.items()
    }
    walks = []
    for _ in range(count):
        here, steps = flow["start"], []
        for _ in range(rng.randint(*VISITS)):
            verb, out = graph[here]
            if not out or verb in ENDS:
                steps.append((here, verb, "", verb))
                break
            label, there = rng.choice(out)
            steps.append((here, verb, label if verb in INPUT_VERBS and label.isdigit() else "", label))
            here = there
        walks.append(steps)
    return walks


@dataclass
class Year:
    """What the seed drew, for choosing what to query."""

    calls: int = 0
    visits: int = 0
    tickets: int = 0
    per_day: Counter[date] = field(default_factory=Counter)
    per_caller: Counter[str] = field(default_factory=Counter)
    sample_protocol: str = ""
    sample_ticket: str = ""


@dataclass
class Day:
    calls: list[tuple[Any, ...]]
    visits: list[tuple[Any, ...]]
    tickets: list[tuple[Any, ...]]


class YearOfCalls:
    def __init__(self, calls: int, seed: int) -> None:
        self.seed = seed
        days = [date(YEAR, 1, 1) + timedelta(days=n) for n in range(365)]
        weights = [WEEKDAY[d.weekday()] for d in days]
        scale = calls / sum(weights)
        counts = [int(w * scale) for w in weights]
        for i in range(calls - sum(counts)):  # the rounding's remainder, on the first days
            counts[i] += 1
        self.days = list(zip(days, counts, strict=True))
        rng = random.Random(seed)
        self.walks = flow_walks(ROOT / "flows" / "sac.yaml", WALKS, rng)
        pool = max(1_000, calls // 5)  # a caller calls 5 times a year on average; a few, hundreds
        area_codes = (11, 21, 31, 41, 51, 61, 71, 81)
        self.callers = [f"{rng.choice(area_codes)}9{n:08d}" for n in rng.sample(range(10**8), pool)]
        self.caller_weights = list(_cumulative([1 / (rank + 10) ** 0.9 for rank in range(pool)]))
        self.customer_names = [f"Cliente {n:05d} Ltda" for n in range(1, CUSTOMERS + 1)]
        self.hour_weights = list(_cumulative(HOURLY))
        self.outcome_weights = list(_cumulative(w for _, w in OUTCOMES))
        self.year = Year()

    def customers(self) -> list[tuple[Any, ...]]:
        created = datetime(YEAR - 3, 1, 1, tzinfo=UTC)
        return [
            (f"{n:08d}000199", f"{n:08d}", f"{100000 + n}", name, "active", created)
            for n, name in enumerate(self.customer_names, start=1)
        ]

    def each_day(self) -> Iterator[Day]:
        """The year day by day; the same calls whichever store asks (each day has its own generator)."""
        self.year = Year()
        protocol_seq = ticket_seq = 0
        for day_index, (day, count) in enumerate(self.days):
            rng = random.Random(self.seed * 1000 + day_index)
            midnight = datetime(day.year, day.month, day.day, tzinfo=LOCAL)
            starts = sorted(
                midnight + timedelta(hours=h, seconds=rng.random() * 3600)
                for h in rng.choices(range(24), cum_weights=self.hour_weights, k=count)
            )
            callers = rng.choices(range(len(self.callers)), cum_weights=self.caller_weights, k=count)
            outcomes = rng.choices([o for o, _ in OUTCOMES], cum_weights=self.outcome_weights, k=count)
            calls, visits, tickets = [], [], []
            for start, caller, outcome in zip(starts, callers, outcomes, strict=True):
                protocol_seq += 1
                protocol = make_call_protocol(YEAR, protocol_seq)
                number = self.callers[caller]
                customer = caller % CUSTOMERS + 1 if rng.random() < IDENTIFIED_SHARE else None
                at = start
                walk = rng.choice(self.walks)
                if rng.random() < 0.1:  # a caller who did not answer a menu the first time
                    menus = [i for i, step in enumerate(walk) if step[1] in INPUT_VERBS]
                    if menus:
                        i = rng.choice(menus)
                        missed = (walk[i][0], walk[i][1], "", rng.choice(("no_input", "no_match")))
                        walk = [*walk[: i + 1], missed, *walk[i + 1 :]]
                last = len(walk) - 1
                for i, (node, verb, key, left_by) in enumerate(walk):
                    if i == last and outcome == "hangup":
                        left_by = "hangup"
                    elif i == last and outcome == "failed":
                        left_by = rng.choice(("error", "timeout", "no_input"))
                    spent = rng.randint(300, 12_000)
                    visits.append((protocol, FLOW, FLOW_VERSION, node, verb, key, left_by, at, spent))
                    at += timedelta(milliseconds=spent)
                if outcome.startswith(("queue:", "transfer:")):
                    at += timedelta(seconds=rng.randint(30, 900))  # until an agent (or the number) answers
                # The year's last calls that would end in the next year are still in progress.
                ended = None if (day_index == len(self.days) - 1 and at.date() > day) else at
                calls.append(
                    (protocol, number, "30033336", f"{start.timestamp():.3f}", f"{start.timestamp():.3f}",
                     f"PJSIP/carrier-{protocol_seq:08x}", FLOW, FLOW_VERSION, start, ended,
                     outcome if ended else "", "{}", customer,
                     self.customer_names[customer - 1] if customer else "")
                )  # fmt: skip
                if rng.random() < TICKET_SHARE:
                    ticket_seq += 1
                    kind = rng.choice(TICKET_KINDS.get(outcome, OTHER_TICKETS))
                    opened = start + timedelta(seconds=rng.randint(20, 120))
                    tickets.append(
                        (make_ticket_number(ticket_seq), customer, kind, rng.choice(TICKET_STATES), "",
                         "opened on the IVR", protocol, opened, opened)
                    )  # fmt: skip
                self.year.per_caller[number] += 1
            self.year.calls += len(calls)
            self.year.visits += len(visits)
            self.year.tickets += len(tickets)
            self.year.per_day[day] = len(calls)
            if day_index == len(self.days) // 2:
                with_ticket = {t[6]: t[0] for t in tickets}
                self.year.sample_protocol, self.year.sample_ticket = next(iter(with_ticket.items()))
            yield Day(calls, visits, tickets)


def _cumulative(weights: Any) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


# --- seeding ----------------------------------------------------------------------------------------------


def _sqlite_time(value: datetime | None) -> str | None:
    """As UtcDateTime stores it on SQLite: naive UTC text with microseconds (compared as text)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in row)


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def seed_sqlite(path: Path, year: YearOfCalls) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")  # the seed only: the store sets its own on connecting
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("BEGIN")
        db.executemany(_insert("customers", CUSTOMER_COLUMNS), map(_sqlite_row, year.customers()))
        db.execute("COMMIT")
        for day in year.each_day():
            db.execute("BEGIN")
            db.executemany(_insert("calls", CALL_COLUMNS), map(_sqlite_row, day.calls))
            db.executemany(_insert("node_visits", VISIT_COLUMNS), map(_sqlite_row, day.visits))
            db.executemany(_insert("tickets", TICKET_COLUMNS), map(_sqlite_row, day.tickets))
            db.execute("COMMIT")
        db.execute("ANALYZE")
    finally:
        db.close()


async def seed_postgres(dsn: str, year: YearOfCalls) -> None:
    db = await asyncpg.connect(dsn)
    try:
        await db.copy_records_to_table("customers", records=year.customers(), columns=CUSTOMER_COLUMNS)
        for day in year.each_day():
            async with db.transaction():
                await db.copy_records_to_table("calls", records=day.calls, columns=CALL_COLUMNS)
                await db.copy_records_to_table("node_visits", records=day.visits, columns=VISIT_COLUMNS)
                await db.copy_records_to_table("tickets", records=day.tickets, columns=TICKET_COLUMNS)
        await db.execute("VACUUM ANALYZE")
    finally:
        await db.close()


# --- the queries ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    name: str
    median_s: float
    runs: tuple[float, ...]
    rows: int


async def timed(name: str, query: Callable[[], Awaitable[Any]], size: Callable[[Any], int]) -> Timed:
    result = await query()  # warm-up
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = await query()
        runs.append(time.perf_counter() - started)
    return Timed(name, statistics.median(runs), tuple(runs), size(result))


async def console_queries(store: Store, year: Year, *, reports_only: bool = False, label: str = "") -> list[Timed]:
    busiest_day = max(year.per_day, key=lambda d: (year.per_day[d], d))
    day_span = local_days(busiest_day, 1, ZONE)
    month_span = local_days(busiest_day.replace(day=1), calendar.monthrange(YEAR, busiest_day.month)[1], ZONE)
    caller, _ = year.per_caller.most_common(1)[0]
    year_start = local_days(date(YEAR, 1, 1), 1, ZONE)[0]

    def drop_off(span: tuple[datetime, datetime]) -> Awaitable[Any]:
        return store.read(lambda session: _drop_off(session, *span, None))

    lookups = [
        ("trace by protocol", partial(trace, store, year.sample_protocol), lambda t: len(t.path)),
        ("trace by ticket number", partial(trace, store, year.sample_ticket), lambda t: len(t.path)),
        (
            f"listed: busiest caller ({year.per_caller[caller]} calls), year",
            partial(listed, store, CallFilter(since=year_start, caller=caller)),
            len,
        ),
        ("listed: a day, newest 50", partial(listed, store, CallFilter(*day_span)), len),
    ]
    reports = [
        (f"report: day ({busiest_day})", partial(report, store, *day_span), lambda r: r.calls),
        (f"report: month ({busiest_day:%Y-%m})", partial(report, store, *month_span), lambda r: r.calls),
        ("drop-off per node: day", partial(drop_off, day_span), len),
        ("drop-off per node: month", partial(drop_off, month_span), len),
    ]
    queries = ([] if reports_only else lookups) + [(name + label, query, size) for name, query, size in reports]
    return [await timed(name, query, size) for name, query, size in queries]


async def rolled_up(store: Store) -> float:
    """Roll up the whole year, as the first `ivr report` after it would; returns the seconds it took."""
    started = time.perf_counter()
    await roll_up(store, before=datetime(YEAR + 1, 1, 2, tzinfo=UTC))
    return time.perf_counter() - started


async def timed_both_ways(store: Store, year: Year) -> tuple[float, Year, list[Timed]]:
    """Every query on the node visits alone, then the reports again once the year is rolled up."""
    before = await console_queries(store, year, label=" [visits]")
    roll_up_s = await rolled_up(store)
    return roll_up_s, year, before + await console_queries(store, year, reports_only=True, label=" [rolled up]")


def print_table(database: str, seed_s: float, roll_up_s: float, year: Year, results: list[Timed]) -> None:
    print(
        f"\n{database}: {year.calls:,} calls, {year.visits:,} node visits, {year.tickets:,} tickets; "
        f"seed {seed_s:.0f} s, roll-up of the drop-off {roll_up_s:.0f} s"
    )
    print(f"{'query':<60} {'median ms':>10} {'min-max ms':>16} {'rows':>7} {'x goal':>7}")
    for t in results:
        spread = f"{min(t.runs) * 1000:.1f}-{max(t.runs) * 1000:.1f}"
        verdict = "" if t.median_s <= GOAL_S else "  MISSES 0.5 s"
        print(
            f"{t.name:<60} {t.median_s * 1000:>10.1f} {spread:>16} {t.rows:>7} "
            f"{t.median_s / GOAL_S:>7.3f}{verdict}"
        )


async def run_sqlite(directory: Path, year: YearOfCalls) -> None:
    path = directory / "ivr.sqlite3"
    store = Store(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(store)
    finally:
        await store.aclose()
    started = time.perf_counter()
    await asyncio.to_thread(seed_sqlite, path, year)
    seed_s = time.perf_counter() - started
    print(f"(sqlite file: {path.stat().st_size / 2**20:,.0f} MiB)")
    store = Store(f"sqlite+aiosqlite:///{path}")
    try:
        print_table("SQLite", seed_s, *await timed_both_ways(store, year.year))
    finally:
        await store.aclose()


async def run_postgres(directory: Path, year: YearOfCalls) -> None:
    server = PostgresServer(directory / "postgres")
    server.start()
    try:
        url = await server.fresh_database()
        store = Store(url)
        try:
            await upgrade(store)
            started = time.perf_counter()
            await seed_postgres(url.replace("postgresql+asyncpg", "postgresql"), year)
            seed_s = time.perf_counter() - started
            print_table("PostgreSQL", seed_s, *await timed_both_ways(store, year.year))
        finally:
            await store.aclose()
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=lambda s: int(float(s)), default=1_000_000, help="calls in the year")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one store only")
    parser.add_argument("--seed", type=int, default=11, help="the random generator's seed")
    args = parser.parse_args()
    year = YearOfCalls(args.calls, args.seed)
    directory = Path(tempfile.mkdtemp(prefix="console-bench-"))
    directory.chmod(0o711)  # the PostgreSQL server runs as the postgres user, in a directory under this one
    try:
        if args.only in (None, "sqlite"):
            await run_sqlite(directory, year)
        if args.only in (None, "postgresql"):
            await run_postgres(directory, year)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
