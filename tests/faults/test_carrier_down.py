"""Whole calls while the carrier's systems (backend: http) are down or slow: the caller is told plainly
that the system is unavailable and handed to a person, never left waiting past the deadline; the
breaker stops the calls from waiting at all, and lets them through again once the back-end is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.app import build_services
from ivr.clock import ManualClock
from ivr.config import Settings, load_settings
from ivr.engine.context import Outcome
from ivr.engine.flow import Flow
from ivr.voice.catalogue import Catalogue
from tests.http.carrier_fake import KNOWN_CALLER, TOKEN, CarrierFake, Fault

from .conftest import TUESDAY_10H, call, free_port, seeded_sqlite, words

TOLD = "o nosso sistema não está disponível agora. Vamos passar a sua ligação para um atendente"
RESET_S = 0.5  # the breaker's cool-down
# A technical failure report by a caller the IVR cannot identify (caller ID and CNPJ both need the back-end).
REPORT_FAILURE = ["1", "1", "11222333000181"]


async def settings_for(tmp_path: Path, base_url: str, **carrier: Any) -> Settings:
    return load_settings(
        database_url=await seeded_sqlite(tmp_path),  # holds the protocols and events; accounts come over HTTP
        var_dir=tmp_path,
        backend="http",
        carrier_api={
            "base_url": base_url, "token": TOKEN, "read_deadline_s": 0.8, "attempt_timeout_s": 0.3,
            "connect_timeout_s": 0.3, "read_retries": 1, "backoff_first_s": 0.01, "backoff_max_s": 0.02,
            "breaker_failures": 2, "breaker_reset_s": RESET_S, **carrier,
        },  # fmt: skip
        hold={"after_s": 0.2},
    )


async def test_back_end_down_caller_told_and_given_a_person_then_breaker_recovers(
    tmp_path: Path, sac_flows: Mapping[str, Flow], catalogue: Catalogue
) -> None:
    port = free_port()
    settings = await settings_for(tmp_path, f"http://127.0.0.1:{port}/v1")
    async with build_services(settings, clock=ManualClock(TUESDAY_10H)) as services:
        result, line = await call(sac_flows, services, settings, REPORT_FAILURE, caller=KNOWN_CALLER)
        assert (result.outcome, result.target) == (Outcome.QUEUE, "technical")
        assert TOLD in words(catalogue, line)
        assert "identify/unavailable" in result.path and result.customer_id is None

        # The breaker is open now: the next caller is told at once, without waiting for time-outs.
        started = time.monotonic()
        result, line = await call(sac_flows, services, settings, REPORT_FAILURE, caller=KNOWN_CALLER)
        assert TOLD in words(catalogue, line) and result.target == "technical"
        assert time.monotonic() - started < settings.carrier_api.read_deadline_s

        fake = CarrierFake()
        runner = web.AppRunner(fake.app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.sleep(RESET_S)  # the cool-down itself: what the breaker promises to wait, no more
            result, line = await call(sac_flows, services, settings, ["1", "0"], caller=KNOWN_CALLER)
        finally:
            await runner.cleanup()
    # Nobody restarted anything: the probe found the back-end and the caller was identified by caller ID.
    assert result.customer_id == 1 and fake.hits["GET /customers"] >= 1
    assert TOLD not in words(catalogue, line) and result.target == "technical"


async def test_back_end_slow_caller_hears_hold_then_is_told_within_the_deadline(
    tmp_path: Path, carrier: CarrierFake, sac_flows: Mapping[str, Flow], catalogue: Catalogue
) -> None:
    carrier.misbehave("GET /customers", Fault.SLOW)  # every search hangs until the test ends
    settings = await settings_for(tmp_path, carrier.base_url, breaker_failures=100)
    async with build_services(settings, clock=ManualClock(TUESDAY_10H)) as services:
        started = time.monotonic()
        result, line = await call(sac_flows, services, settings, REPORT_FAILURE, caller=KNOWN_CALLER)
        elapsed = time.monotonic() - started
    heard = words(catalogue, line)
    assert "Um momento, por favor. Estamos consultando as informações." in heard
    assert TOLD in heard and (result.outcome, result.target) == (Outcome.QUEUE, "technical")
    # Two look-ups (caller ID, then the CNPJ), each cut at its deadline; a margin for a loaded machine.
    assert elapsed < 2 * settings.carrier_api.read_deadline_s + 1.5


async def test_a_request_that_cannot_be_opened_is_told_and_retention_takes_the_call(
    tmp_path: Path, carrier: CarrierFake, sac_flows: Mapping[str, Flow], catalogue: Catalogue
) -> None:
    """Reads work but writes fail (POST /tickets answers 500): the cancellation request gets no protocol,
    so the caller must hear why before being handed over (before the fix they were moved on in silence)."""
    carrier.misbehave("POST /tickets", Fault.ERROR_500)
    settings = await settings_for(tmp_path, carrier.base_url)
    async with build_services(settings, clock=ManualClock(TUESDAY_10H)) as services:
        result, line = await call(sac_flows, services, settings, ["4", "11222333"], caller=KNOWN_CALLER)
    assert result.customer_id == 1 and carrier.hits["POST /tickets"] == 1  # writes are never retried
    assert TOLD in words(catalogue, line) and result.tickets == []
    assert result.path[-3:] == ["cancellation_not_opened", "commercial_hours", "commercial_queue"]
    assert (result.outcome, result.target) == (Outcome.QUEUE, "commercial")
