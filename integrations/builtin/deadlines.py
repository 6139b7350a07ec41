"""When a ticket of each kind is due: the answer deadlines the caller is told and the summary writes.

Billing adjustments, disputes and copies take the service page's deadlines (`settings.page`); complaints,
cancellation and the rest come from `settings.deadlines`, where a kind left unset has no deadline: the
ticket gets no expected date and nothing is promised. Business days skip weekends and Brazil's national
holidays.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays

from ivr.config import Deadline, DeadlineSettings, ServicePage
from ivr.domain import TicketKind


def deadlines(page: ServicePage, configured: DeadlineSettings) -> dict[TicketKind, Deadline | None]:
    """The answer deadline of every ticket kind (None: none is promised)."""
    copies = Deadline(days=page.document_copy_business_days)
    return {
        **{TicketKind(kind): deadline for kind, deadline in configured},
        TicketKind.BILLING_DOUBT: Deadline(days=page.billing_adjustment_days, business=False),
        TicketKind.BILLING_DISPUTE: Deadline(days=page.dispute_answer_days, business=False),
        TicketKind.BOLETO_COPY: copies,
        TicketKind.NOTA_FISCAL_COPY: copies,
    }


def add_days(start: date, deadline: Deadline) -> date:
    if not deadline.business:
        return start + timedelta(days=deadline.days)
    off = holidays.country_holidays("BR", years=range(start.year, start.year + 2))
    day, left = start, deadline.days
    while left:  # bounded: at most a few weeks of holidays and weekends per business day
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in off:
            left -= 1
    return day
