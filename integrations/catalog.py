"""Every operation flows may call, in one registry: declared for `ivr flow check`, bound for calls.

The classes in `DECLARING` hold every declaration (`@operation` methods); `declared_registry()` reads
them without any back-end and `build_operations(...)` registers the objects that implement them, so the
checker and a real call always agree on the names, arguments, results and requirements.
"""

from __future__ import annotations

from integrations.backend import Backend
from integrations.builtin import operations as builtin
from integrations.builtin.deadlines import deadlines
from integrations.carrier.backend import HttpOperations
from integrations.carrier.messaging import CarrierSource
from integrations.messaging.call_summary import CallSummaries
from integrations.messaging.email_operations import EmailOperations
from integrations.messaging.messages import CallAccounts, MessagingSource, StoreSource
from integrations.messaging.outbox import Outbox
from integrations.messaging.whatsapp_operations import WhatsAppOperations
from ivr.clock import Clock
from ivr.config import Settings
from ivr.engine.operations import OperationRegistry, Operations
from ivr.store.db import Store

#: The classes declaring what flows may call: the back-end's contract, then the messaging operations.
DECLARING: tuple[type[Operations], ...] = (Backend, EmailOperations, WhatsAppOperations)


def declared_registry() -> OperationRegistry:
    """All operations, unbound: names, arguments, results and requirements for `ivr flow check`."""
    return OperationRegistry.declared(*DECLARING)


def build_registry(
    store: Store,
    *,
    outbox: Outbox,
    settings: Settings,
    clock: Clock,
) -> OperationRegistry:
    """All operations bound to their back-ends (see `build_operations`)."""
    registry, _ = build_operations(store, outbox=outbox, settings=settings, clock=clock)
    return registry


def build_operations(
    store: Store,
    *,
    outbox: Outbox,
    settings: Settings,
    clock: Clock,
) -> tuple[OperationRegistry, CallSummaries]:
    """All operations bound to their back-ends: the store, or with ``backend: http`` the carrier's
    systems (accounts, tickets, and the contacts and documents the messaging operations read); and the
    outbox for e-mail and WhatsApp. Close the registry with ``aclose()``. Beside it, the sender of the
    written summary each call ends with, over the same messaging."""
    source: MessagingSource
    if settings.backend == "http":
        carrier = HttpOperations(settings.carrier_api, timezone=settings.timezone, clock=clock)
        registry = carrier.registry()
        registry.on_close(carrier.aclose)
        source = CarrierSource(carrier.client)
    else:
        due = deadlines(settings.page, settings.deadlines)
        registry = builtin.build_registry(store, deadlines=due, clock=clock, timezone=settings.timezone)
        source = StoreSource(store, timezone=settings.timezone, clock=clock)
    accounts = CallAccounts(source)  # the e-mails and WhatsApp messages of a call read its account once
    zone = settings.timezone
    emails = EmailOperations(source, outbox, page=settings.page, accounts=accounts, timezone=zone, clock=clock)
    whatsapp = WhatsAppOperations(source, outbox, conf=settings.whatsapp, accounts=accounts, timezone=zone, clock=clock)
    for messaging in (emails, whatsapp):
        registry.register_all(messaging)
    return registry, CallSummaries(source, emails, whatsapp)
