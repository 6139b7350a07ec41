"""Every adapter's operations in one registry: what flows may call, checked and run.

`declared_registry()` declares them without any back-end (for `ivr flow check`); `build_registry(...)`
binds them for calls. A new adapter adds its operations in both places, so the checker and a real call
always agree on the names, arguments and results.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from integrations import builtin, builtin_journeys, email_operations, whatsapp_operations
from integrations.builtin_deadlines import deadlines
from integrations.call_summary import CallSummaries
from integrations.http_backend import HttpOperations
from integrations.http_messaging import CarrierSource
from integrations.messages import MessagingSource, StoreSource
from integrations.outbox import Outbox
from integrations.registry import BackendError, OperationContext, OperationRegistry, OperationResult
from ivr.config import Settings
from ivr.clock import Clock
from ivr.store.db import Store

async def _unavailable(reason: str, ctx: OperationContext, **args: Any) -> OperationResult:
    raise BackendError(reason)


_unbound = partial(_unavailable, "declared_registry() has no back-ends; calls use build_registry(...)")


def declared_registry() -> OperationRegistry:
    """All operations, unbound: names, arguments and results for `ivr flow check`."""
    registry = builtin.declared_registry()
    for spec in (
        *email_operations.specs(lambda name: _unbound),
        *whatsapp_operations.specs(lambda name: _unbound),
        *builtin_journeys.specs(lambda name: _unbound),
    ):
        registry.register(spec)
    return registry


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
        journeys = builtin_journeys.JourneyOperations(store, timezone=settings.timezone, clock=clock)
        for spec in builtin_journeys.specs(lambda name: getattr(journeys, name)):
            registry.register(spec)
        source = StoreSource(store, timezone=settings.timezone, clock=clock)
    emails = email_operations.EmailOperations(
        source, outbox, page=settings.page, timezone=settings.timezone, clock=clock
    )
    for spec in email_operations.specs(lambda name: getattr(emails, name)):
        registry.register(spec)
    whatsapp = whatsapp_operations.WhatsAppOperations(
        source, outbox, conf=settings.whatsapp, timezone=settings.timezone, clock=clock
    )
    for spec in whatsapp_operations.specs(lambda name: getattr(whatsapp, name)):
        registry.register(spec)
    return registry, CallSummaries(source, emails, whatsapp)
