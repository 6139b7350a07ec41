"""What the operations that message a customer (integrations.email_operations, whatsapp_operations)
share: the outbox they write to, the call's moment and an invoice's month as the customer reads them,
and the invoice a caller asks for by month."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from integrations.outbox import NewMessage, Outbox
from integrations.registry import BackendError
from integrations.store_operations import StoreOperations
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import Invoice

_MONTH = re.compile(r"(\d{4})-(\d{2})")
MONTHS = (
    "janeiro", "fevereiro", "março", "abril", "maio", "junho",
    "julho", "agosto", "setembro", "outubro", "novembro", "dezembro",
)  # fmt: skip


class MessageOperations(StoreOperations):
    """Reads the account from the store and queues its messages in the outbox; the drainer sends later."""

    def __init__(
        self, store: Store, outbox: Outbox, *, timezone: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(store, timezone=timezone, clock=clock)
        self._outbox = outbox

    def _when(self) -> str:
        """Now, as the message says it: 10/03/2026 às 10:00."""
        now = self._clock().astimezone(self._zone)
        return f"{now:%d/%m/%Y} às {now:%H:%M}"

    async def _enqueue(self, *messages: NewMessage) -> None:
        try:
            await self._outbox.enqueue(*messages)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            raise BackendError(f"outbox: {exc}") from exc


def parse_month(month: str) -> date | None:
    """The first day of a YYYY-MM month; None when `month` is empty (the latest invoice). ValueError
    with the message for the flow otherwise."""
    if not month.strip():
        return None
    match = _MONTH.fullmatch(month.strip())
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month {month!r} is not YYYY-MM")
    return date(int(match[1]), int(match[2]), 1)


def latest_invoice(session: Session, customer_id: int, month: date | None) -> Invoice | None:
    """The customer's invoice of `month` (from parse_month), or their latest one when it is None."""
    query = select(Invoice).where(Invoice.customer_id == customer_id)
    if month is not None:
        query = query.where(Invoice.reference_month == month)
    return session.scalars(query.order_by(Invoice.reference_month.desc()).limit(1)).first()


def month_label(month: date) -> str:
    """março de 2026"""
    return f"{MONTHS[month.month - 1]} de {month.year}"
