"""`point_read`: a statement built once that calls run often (`Store.lookup`), run on pysqlite itself.

SQLAlchemy builds and compiles the statement, once per dialect; executing it through a `Connection` then
costs far more than the query: the statement's cache key, the compiled-cache lookup, an execution context,
result metadata, its own begin/commit bookkeeping. Measured inside `ivr serve` on real calls, a point read
of a few indexed rows took 200-700 µs of the loop's CPU that way (bench/README.md), where pysqlite runs
it in a few. On SQLite a point read is the compiled SQL with its parameters in order, SQLAlchemy's own
bind and result processors applied (enums, UTC datetimes, booleans), run on the connection's pysqlite
connection inside the transaction `Store.lookup` began. On another database (PostgreSQL) it is an
ordinary execute.

The plan reads three of SQLAlchemy's private attributes of a compiled statement (`_bind_processors`,
`_result_columns`, a type's `_cached_result_processor`): tests/store/test_pointread.py compares every read
of the call path with SQLAlchemy's own execute, so an upgrade that changes them fails there, not on a call.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound, OperationalError

Processor = Callable[[Any], Any] | None
Statement = Select[*tuple[Any, ...]]


class Rows(list[Any]):
    """A read's rows (tuples whose fields are also the columns' names), with `Result`'s accessors."""

    def first(self) -> Any:
        return self[0] if self else None

    def one(self) -> Any:
        if not self:
            raise NoResultFound("No row was found when one was required")
        if len(self) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any:
        return self[0][0] if self else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self]

    def all(self) -> list[Any]:
        return list(self)


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the parameters in the order of the SQL's "?"
    fixed: Mapping[str, Any]  # values the statement holds itself (an IN list), already processed
    binds: Mapping[str, Callable[[Any], Any]]  # the given values' processors (a datetime, an enum)
    results: tuple[Processor, ...]
    row: type[tuple[Any, ...]]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name in self.names:
            if name in self.fixed:
                values.append(self.fixed[name])
                continue
            value = params[name]
            process = self.binds.get(name)
            values.append(process(value) if process is not None and value is not None else value)
        return values

    def rows(self, raw: Iterable[tuple[Any, ...]]) -> Rows:
        make, results = self.row, self.results
        return Rows(make(*(p(v) if p is not None else v for p, v in zip(results, r, strict=True))) for r in raw)


def _plan(statement: Statement, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    given = {bind.key for bind in compiled.binds.values() if bind.required}
    # The IN lists built into the statement expand to "?, ?"; the given values' placeholders are unaffected.
    expanded = compiled.construct_expanded_state(dict.fromkeys(given, 0))
    # A sequence of processors is for a tuple IN ((a, b), ...), which no point read has.
    processors = {n: p for n, p in {**compiled._bind_processors, **expanded.processors}.items() if callable(p)}
    assert expanded.positiontup is not None  # pysqlite's "?" parameters are positional
    fixed = {
        name: processors[name](value) if name in processors and value is not None else value
        for name, value in expanded.parameters.items()
        if name not in given
    }
    columns = compiled._result_columns
    return _Plan(
        sql=expanded.statement,
        names=tuple(expanded.positiontup),
        fixed=fixed,
        binds={name: processors[name] for name in given if name in processors},
        results=tuple(column.type._cached_result_processor(dialect, None) for column in columns),
        row=namedtuple("Row", [column.keyname for column in columns], rename=True),
    )


#: Each statement's SQLite plan, by the statement's identity (the statement is kept with it, so an id is
#: never reused while its plan is here). Only statements built once go through `point_read`.
_PLANS: dict[int, tuple[Statement, _Plan]] = {}
MAX_PLANS = 256  # far more than the call path's statements: a bound, not a size


def point_read(conn: Connection, statement: Statement, params: Mapping[str, Any] | None = None) -> Rows:
    """`statement` (built once, at import) with `params`: on SQLite through its plan on pysqlite, elsewhere
    an ordinary execute. See the module's doc."""
    values = params or {}
    if conn.dialect.name != "sqlite":
        return Rows(conn.execute(statement, dict(values)).all())
    kept = _PLANS.get(id(statement))
    if kept is None:
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        kept = _PLANS[id(statement)] = (statement, _plan(statement, conn.dialect))
    plan = kept[1]
    arguments = plan.arguments(values)
    sqlite = conn.connection.driver_connection
    assert sqlite is not None  # a connection in a transaction is attached
    try:
        return plan.rows(sqlite.execute(plan.sql, arguments))
    except sqlite3.Error as exc:  # said as SQLAlchemy says it: StoreUnavailable, or a busy read's fallback
        raise OperationalError(plan.sql, arguments, exc) from exc
