"""Every adapter's operations in one registry: what flows may call, checked and run.

`declared_registry()` declares them without any back-end (for `ivr flow check`); `build_registry(...)`
binds them for calls. A new adapter adds its operations in both places, so the checker and a real call
always agree on the names, arguments and results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from integrations import builtin, builtin_journeys, email_operations, whatsapp_operations
from integrations.http_backend import HttpOperations
from integrations.outbox import Outbox
from integrations.registry import BackendError, OperationContext, OperationRegistry, OperationResult
from ivr.config import Settings
from ivr.store.db import Store

log = logging.getLogger(__name__)


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
    clock: Callable[[], datetime] | None = None,
) -> OperationRegistry:
    """All operations bound to their back-ends: the store (or, with ``backend: http``, the carrier's
    systems for the account operations), and the outbox for e-mail and WhatsApp. Close it with
    ``aclose()``."""
    if settings.backend == "http":
        # The account operations and the journeys' ones, which read accounts too (never the store's
        # account that happens to have the same id).
        carrier = HttpOperations(settings.carrier_api, timezone=settings.timezone, clock=clock)
        registry = carrier.registry()
        registry.on_close(carrier.aclose)
    else:
        registry = builtin.build_registry(store, clock=clock, timezone=settings.timezone)
        journeys = builtin_journeys.JourneyOperations(store, timezone=settings.timezone, clock=clock)
        for spec in builtin_journeys.specs(lambda name: getattr(journeys, name)):
            registry.register(spec)
    if settings.backend == "http":
        # The e-mail and WhatsApp operations read the account's registered contacts and documents from
        # the store; with the carrier's systems the same customer id is another account. They take the
        # flow's error branch until the carrier API offers contacts and documents to them.
        log.warning("backend: http: the e-mail and WhatsApp operations are not available")
        unavailable = partial(_unavailable, "e-mail and WhatsApp need the store's accounts (backend: builtin)")
        for adapter in (email_operations, whatsapp_operations):
            for spec in adapter.specs(lambda name: unavailable):
                registry.register(spec)
        return registry
    emails = email_operations.EmailOperations(
        store, outbox, page=settings.page, timezone=settings.timezone, clock=clock
    )
    for spec in email_operations.specs(lambda name: getattr(emails, name)):
        registry.register(spec)
    whatsapp = whatsapp_operations.WhatsAppOperations(
        store, outbox, conf=settings.whatsapp, timezone=settings.timezone, clock=clock
    )
    for spec in whatsapp_operations.specs(lambda name: getattr(whatsapp, name)):
        registry.register(spec)
    return registry
