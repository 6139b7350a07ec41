"""A whole call while the database (PostgreSQL, the shared store) is unreachable: the call gets a protocol
from this unit's fallback range and goes on; its node visits and call record wait in memory and are
written once the database is back; the fallback number is reconciled. Nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ivr.app import build_services
from ivr.clock import ManualClock
from ivr.config import load_settings
from ivr.engine.context import Outcome
from ivr.engine.flow import Flow
from ivr.store.db import Store
from ivr.store.events import StoreEventSink
from ivr.store.migrate import upgrade
from ivr.store.models import Call, FallbackProtocol, NodeVisit
from ivr.store.seed import KNOWN_CALLER, seed
from ivr.voice.catalogue import Catalogue
from tests.postgres import PostgresServer

from .conftest import TUESDAY_10H, Relay, call, words

WAIT_S = 15.0  # the longest the test waits for the buffered records to be written


async def test_store_down_call_completes_with_a_fallback_protocol_and_nothing_is_lost(
    tmp_path: Path, postgres: PostgresServer, sac_flows: Mapping[str, Flow], catalogue: Catalogue
) -> None:
    relay = Relay(postgres.port)
    await relay.restore()
    url = make_url(await postgres.fresh_database()).set(port=relay.port).render_as_string(hide_password=False)
    store = Store(url)
    try:
        await upgrade(store)
        await seed(store, now=TUESDAY_10H)
    finally:
        await store.aclose()
    settings = load_settings(
        database_url=url,
        var_dir=tmp_path,
        store={"allocate_timeout_s": 0.5, "event_flush_interval_s": 0.05, "event_retry_max_s": 0.2},
    )
    first, last = settings.protocol_fallback_range
    async with build_services(settings, clock=ManualClock(TUESDAY_10H)) as services:
        events = services.events
        assert isinstance(events, StoreEventSink)
        await relay.cut()
        down, line = await call(sac_flows, services, settings, ["0"], caller=KNOWN_CALLER)

        assert (down.outcome, down.target) == (Outcome.QUEUE, "technical")
        assert first <= int(down.protocol[4:11]) <= last  # YYYY + the 7-digit sequence + check digit
        spoken = catalogue.render_text(["your_protocol_is"])
        assert spoken in words(catalogue, line)  # announced as always, before the menu
        assert events.pending >= len(down.path)  # waiting in memory, not lost

        await relay.restore()
        await asyncio.wait_for(events.flushed(), WAIT_S)
        # The next call's protocol comes from the store again, and reconciles the fallback number.
        up, _ = await call(sac_flows, services, settings, ["0"], caller=KNOWN_CALLER)
        assert int(up.protocol[4:11]) < first
    assert events.dropped == 0 and events.rejected == 0

    store = Store(url)
    try:
        visits = await store.read(
            lambda s: s.execute(select(func.count()).where(NodeVisit.call_protocol == down.protocol)).scalar_one()
        )
        row = await store.read(lambda s: s.execute(select(Call).where(Call.protocol == down.protocol)).scalar_one())
        reconciled = await store.read(lambda s: s.get(FallbackProtocol, down.protocol))
    finally:
        await store.aclose()
    assert visits == len(down.path)
    assert (row.outcome, row.caller_id) == ("queue:technical", KNOWN_CALLER)
    assert reconciled is not None
