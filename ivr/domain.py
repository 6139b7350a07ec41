"""The business's words, shared by every layer: the states of an account, the kinds and states of a ticket,
of an invoice and its lines, the documents a customer may ask for, the ways to reach a contact.

They are the values the store keeps, the carrier's API sends and the flows' templates compare; the
engine, the store and the integrations import them from here, never from one another.
"""

from __future__ import annotations

from enum import Enum


class AccountStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # e.g. overdue invoices; reactivated once paid
    DEACTIVATED = "deactivated"


class ContactKind(str, Enum):
    PHONE = "phone"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class TicketKind(str, Enum):
    TECHNICAL_FAILURE = "technical_failure"
    SERVICE_REQUEST = "service_request"
    BILLING_DOUBT = "billing_doubt"
    BILLING_DISPUTE = "billing_dispute"
    BOLETO_COPY = "boleto_copy"
    NOTA_FISCAL_COPY = "nota_fiscal_copy"
    COMPLAINT = "complaint"
    CANCELLATION = "cancellation"
    DUE_DATE_CHANGE = "due_date_change"
    MAINTENANCE_RESCHEDULE = "maintenance_reschedule"
    BGP_REQUEST = "bgp_request"
    CALLBACK_REQUEST = "callback_request"


class TicketState(str, Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class InvoiceStatus(str, Enum):
    PAID = "paid"
    OPEN = "open"
    OVERDUE = "overdue"


class InvoiceLineKind(str, Enum):
    SERVICE = "service"  # the month's recurring charge
    PARTIAL = "partial"  # pro-rata period between activation/removal and the billing cycle
    DISCOUNT = "discount"  # commercial discount or removal credit (negative amount)
    CREDIT = "credit"  # credit from an upheld dispute (negative amount)


class DocumentKind(str, Enum):
    BOLETO = "boleto"
    NOTA_FISCAL = "nota_fiscal"
