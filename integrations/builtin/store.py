"""The base of every class answering from our own store (ivr/store): the store, the carrier's time zone
and clock, and store failures turned into `BackendError` (the flow's ``error`` branch)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from integrations import answers
from ivr.clock import Clock
from ivr.engine.operations import BackendError
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import Ticket

T = TypeVar("T")


class StoreOperations:
    def __init__(self, store: Store, *, timezone: str, clock: Clock) -> None:
        super().__init__()  # the store back-end's next base (integrations.backend.Backend) sets itself up too
        self._store = store
        self._zone = ZoneInfo(timezone)
        self._clock = clock

    def _local_date(self, moment: datetime) -> date:
        return answers.local_date(moment, self._zone)

    def _ticket_answer(self, ticket: Ticket) -> dict[str, Any]:
        """One ticket as the operations about a ticket answer it (`answers.TICKET_RESULTS`)."""
        return {
            "number": ticket.number,
            "kind": ticket.kind.value,
            "state": ticket.state.value,
            "circuit": ticket.circuit.designation if ticket.circuit else "",
            "opened_on": self._local_date(ticket.created_at),
            "updated_on": self._local_date(ticket.updated_at),
            "expected_date": ticket.expected_date or "",
            "call_protocol": ticket.call_protocol or "",
        }

    async def _read(self, fn: Callable[[Session], T]) -> T:
        try:
            return await self._store.read(fn)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"store: {exc}") from exc

    async def _write(self, fn: Callable[[Session], T]) -> T:
        try:
            return await self._store.write(fn)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"store: {exc}") from exc


def newest_ticket(session: Session, customer_id: int, *criteria: ColumnElement[bool]) -> Ticket | None:
    """The customer's most recently opened ticket meeting `criteria`."""
    return session.scalars(
        select(Ticket)
        .where(Ticket.customer_id == customer_id, *criteria)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()
