"""`point_read` and `insert_rows`: statements built once that calls run often, run on pysqlite itself.

SQLAlchemy builds and compiles the statement, once per dialect; executing it through a `Connection` then
costs far more than the query: the statement's cache key, the compiled-cache lookup, an execution context,
result metadata, its own begin/commit bookkeeping. Measured inside `ivr serve` on real calls, a point read
of a few indexed rows took 200-700 µs of the loop's CPU that way (bench/README.md), where pysqlite runs
it in a few. On SQLite a point read is the compiled SQL with its parameters in order, SQLAlchemy's own
bind and result processors applied (enums, UTC datetimes, booleans), run on the connection's pysqlite
connection inside the transaction `Store.lookup` began. On another database (PostgreSQL) it is an
ordinary execute.

`insert_rows` does the same for the call path's inserts (the batches of node visits and call rows, the
outbox's messages): each row's values go through the columns' bind processors in the order of the
compiled SQL's "?", the columns' scalar defaults are filled in once, and pysqlite runs one
``executemany`` (or, with RETURNING, one execute a row, whose answers come back in the rows' order). In a
burst of calls, SQLAlchemy's parameter handling for an executemany cost nearly as much as SQLite's inserts.

The plans read three of SQLAlchemy's private attributes of a compiled statement (`_bind_processors`,
`_result_columns`, a type's `_cached_result_processor`): tests/store/test_pointread.py compares every read
and insert of the call path with SQLAlchemy's own execute, so an upgrade that changes them fails there,
not on a call.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, KeysView, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Insert, Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, OperationalError
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.schema import ScalarElementColumnDefault

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


# --- inserts -------------------------------------------------------------------------------------------

Inserted = Insert | ReturningInsert[Any]


@dataclass(frozen=True, slots=True)
class _InsertPlan:
    sql: str
    keys: KeysView[str]  # the columns each row names
    defaults: Mapping[str, Any]  # the scalar defaults of the columns the rows do not name, processed
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # a row's values (with the defaults) in the "?" order
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # where a value has a processor (applied to None too)
    returning: tuple[Processor, ...] | None  # RETURNING's result processors

    def arguments(self, row: Mapping[str, Any]) -> list[Any]:
        if row.keys() != self.keys:
            raise ValueError(f"a row to insert names {sorted(row)}, the batch's first row {sorted(self.keys)}")
        values = list(self.values({**row, **self.defaults}))
        for position, process in self.processed:
            values[position] = process(values[position])
        return values


def _insert_plan(statement: Inserted, dialect: Dialect, row: Mapping[str, Any]) -> _InsertPlan | None:
    """The plan for rows naming the columns `row` names, or None when a column's default is computed per row
    (a callable, a SQL expression in Python): SQLAlchemy's own execute fills those in."""
    compiled = statement.compile(dialect=dialect, column_keys=list(row))
    processors = {name: p for name, p in compiled._bind_processors.items() if callable(p)}
    defaults = {}
    for column in compiled.insert_prefetch:
        default = column.default
        if not isinstance(default, ScalarElementColumnDefault):
            return None
        process = processors.pop(column.key, None)
        defaults[column.key] = process(default.arg) if process is not None else default.arg
    names = compiled.positiontup
    assert names  # pysqlite's "?" parameters are positional, and an insert of rows has some
    if set(names) - set(row) - set(defaults):
        return None  # a parameter that is neither a given column nor a default (not an insert of rows)
    return _InsertPlan(
        sql=compiled.string,
        keys=dict.fromkeys(row).keys(),
        defaults=defaults,
        values=itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],),
        processed=tuple((i, processors[name]) for i, name in enumerate(names) if name in processors),
        returning=(
            tuple(column.type._cached_result_processor(dialect, None) for column in compiled._result_columns)
            if compiled.effective_returning
            else None
        ),
    )


_INSERT_PLANS: dict[tuple[int, tuple[str, ...]], tuple[Inserted, _InsertPlan | None]] = {}


def insert_rows(conn: Connection, statement: Inserted, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Insert `rows` (each naming the columns the first one names) with `statement` (built once, at
    import), in the connection's transaction; RETURNING's rows in the rows' order (none without it). On
    SQLite through its plan on pysqlite, elsewhere an ordinary execute. See the module's doc."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        return _executed(conn, statement, rows)
    keys = tuple(rows[0])
    kept = _INSERT_PLANS.get((id(statement), keys))
    if kept is None:
        if len(_INSERT_PLANS) >= MAX_PLANS:
            _INSERT_PLANS.clear()
        kept = _INSERT_PLANS[id(statement), keys] = (statement, _insert_plan(statement, conn.dialect, rows[0]))
    plan = kept[1]
    if plan is None:
        return _executed(conn, statement, rows)
    arguments = [plan.arguments(row) for row in rows]
    sqlite = conn.connection.driver_connection
    assert sqlite is not None  # a connection in a transaction is attached
    try:
        if plan.returning is None:
            sqlite.executemany(plan.sql, arguments)
            return []
        results = plan.returning
        return [
            tuple(p(v) if p is not None else v for p, v in zip(results, row, strict=True))
            for values in arguments
            for row in sqlite.execute(plan.sql, values)
        ]
    except sqlite3.Error as exc:  # said as SQLAlchemy says it: an IntegrityError, a busy OperationalError...
        raise DBAPIError.instance(plan.sql, arguments, exc, sqlite3.Error) from exc


def _executed(conn: Connection, statement: Inserted, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    result = conn.execute(statement, rows)
    return [tuple(row) for row in result] if result.returns_rows else []
