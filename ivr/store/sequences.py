"""Named counters bumped atomically in the caller's write transaction (safe across processes).

One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: PostgreSQL's row lock and SQLite's
``BEGIN IMMEDIATE`` write lock make two processes never read the same value.
"""

from __future__ import annotations

from sqlalchemy import Connection, Insert, Integer, String, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ivr.store.models import Sequence

TICKET = "ticket"


def _bump(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    count = bindparam("count", type_=Integer)
    return (
        insert(Sequence)
        .values(name=bindparam("name", type_=String), value=count)
        .on_conflict_do_update(index_elements=[Sequence.name], set_={"value": Sequence.value + count})
        .returning(Sequence.value)
    )


#: Built once per dialect, executed on the connection (not through the ORM's bulk insert path, nor a cache
#: key computed for a statement built afresh each time: a call's protocol is one of these).
_BUMP = {dialect: _bump(dialect) for dialect in ("sqlite", "postgresql")}


def call_protocol_sequence(year: int) -> str:
    return f"call_protocol:{year}"


def next_value(connection: Connection, name: str, count: int = 1) -> int:
    """The next value of sequence `name` (1 for a new sequence); with `count`, the last of the next
    `count` values (the caller takes all of them). Inside the caller's write transaction."""
    statement = _BUMP[connection.dialect.name]
    return int(connection.execute(statement, {"name": name, "count": count}).scalar_one())


def raise_to(session: Session, name: str, value: int) -> None:
    """Make sure the next value of `name` is above `value` (numbers issued outside the sequence)."""
    current = session.get(Sequence, name)
    if current is None:
        session.add(Sequence(name=name, value=value))
    elif current.value < value:
        current.value = value
