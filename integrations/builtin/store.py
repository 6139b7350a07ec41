"""The base of every class answering from our own store (ivr/store): the store, the carrier's time zone
and clock, and store failures turned into `BackendError` (the flow's ``error`` branch).

The reads on a call's path (a ticket's state here, the caller's account, the announcements) are Core
statements built once at import, their values bound when they run: building a statement and its cache
key costs about as much CPU as running it, and ORM objects cost more than the few columns an answer says.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Select, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from integrations import answers
from ivr.clock import Clock
from ivr.engine.operations import BackendError
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import Circuit, Ticket
from ivr.store.pointread import point_read

T = TypeVar("T")
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


class StoreOperations:
    def __init__(self, store: Store, *, timezone: str, clock: Clock) -> None:
        super().__init__()  # the store back-end's next base (integrations.backend.Backend) sets itself up too
        self._store = store
        self._zone = ZoneInfo(timezone)
        self._clock = clock

    def _local_date(self, moment: datetime) -> date:
        return answers.local_date(moment, self._zone)

    async def _ticket(self, query: Select[*tuple[Any, ...]], **values: Any) -> dict[str, Any] | None:
        """The ticket `query` (from `newest_ticket_answer`) finds with `values`, as the operations about a
        ticket answer it (`answers.TICKET_RESULTS`); None when there is none."""
        ticket = await self._read(lambda conn: point_read(conn, query, values).first())
        if ticket is None:
            return None
        return {
            "number": ticket.number,
            "kind": ticket.kind.value,
            "state": ticket.state.value,
            "circuit": ticket.designation or "",
            "opened_on": self._local_date(ticket.created_at),
            "updated_on": self._local_date(ticket.updated_at),
            "expected_date": ticket.expected_date or "",
            "call_protocol": ticket.call_protocol or "",
        }

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        """A read on the call's path: a few rows by an index, Core statements (`Store.lookup`)."""
        try:
            return await self._store.lookup(fn)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"store: {exc}") from exc

    async def _write(self, fn: Callable[[Session], T]) -> T:
        try:
            return await self._store.write(fn)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"store: {exc}") from exc


def newest_ticket(session: Session, customer_id: int, *criteria: ColumnElement[bool]) -> Ticket | None:
    """The customer's most recently opened ticket meeting `criteria`."""
    return session.scalars(_newest(select(Ticket), customer_id, *criteria)).first()


def newest_ticket_answer(*criteria: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """The statement `StoreOperations._ticket` runs: the columns of the customer's (``customer_id``) most
    recently opened ticket meeting `criteria`, its circuit joined."""
    joined = select(
        Ticket.number,
        Ticket.kind,
        Ticket.state,
        Circuit.designation,
        Ticket.created_at,
        Ticket.updated_at,
        Ticket.expected_date,
        Ticket.call_protocol,
    ).outerjoin(Circuit, Ticket.circuit_id == Circuit.id)
    return _newest(joined, bindparam("customer_id"), *criteria)


def _newest(query: S, customer_id: Any, *criteria: ColumnElement[bool]) -> S:
    return (
        query.where(Ticket.customer_id == customer_id, *criteria)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1)
    )
