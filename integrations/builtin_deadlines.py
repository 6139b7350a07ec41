"""When a ticket of each kind is due: the answer deadlines the caller is told.

Billing and document deadlines come from the carrier's service page (settings().page); business days
skip weekends and Brazil's national holidays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import holidays

from ivr.store.models import TicketKind


@dataclass(frozen=True, slots=True)
class Deadline:
    days: int
    business: bool  # business days (national holidays and weekends skipped) or calendar days


def deadlines() -> dict[TicketKind, Deadline]:
    """Answer deadlines by ticket kind; the billing and document ones come from the service page."""
    from ivr.config import settings

    page = settings().page
    return {
        TicketKind.TECHNICAL_FAILURE: Deadline(1, False),
        TicketKind.SERVICE_REQUEST: Deadline(5, True),
        TicketKind.BILLING_DOUBT: Deadline(page.billing_adjustment_days, False),
        TicketKind.BILLING_DISPUTE: Deadline(page.dispute_answer_days, False),
        TicketKind.BOLETO_COPY: Deadline(page.document_copy_business_days, True),
        TicketKind.NOTA_FISCAL_COPY: Deadline(page.document_copy_business_days, True),
        TicketKind.COMPLAINT: Deadline(5, True),  # RGC: complaints answered within 5 business days
        TicketKind.CANCELLATION: Deadline(2, True),
        TicketKind.DUE_DATE_CHANGE: Deadline(5, True),
        TicketKind.MAINTENANCE_RESCHEDULE: Deadline(3, True),
        TicketKind.BGP_REQUEST: Deadline(3, True),
        TicketKind.CALLBACK_REQUEST: Deadline(1, True),
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
