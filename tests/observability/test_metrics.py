"""``ivr serve``'s /metrics as a scraper sees them: calls run through the engine with scripted callers,
then /metrics read over HTTP from 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from integrations.messaging.outbox import NewMessage, Outbox
from ivr.app import demo_services
from ivr.clock import ManualClock
from ivr.config import ConfigError, MetricsSettings, load_settings
from ivr.engine.context import Outcome
from ivr.engine.interpreter import run_call
from ivr.engine.operations import BackendError, OperationContext, OperationResult
from ivr.engine.ports import CallInfo
from ivr.engine.scripted import ScriptedChannel
from ivr.metrics import PrometheusMetrics, metrics_server
from ivr.store.db import Store, StoreUnavailable
from ivr.store.migrate import upgrade
from ivr.store.models import OutboxChannel
from ivr.store.protocols import FallbackRange, StoreProtocolAllocator
from ivr.store.seed import KNOWN_CALLER

from ..engine.fakes import flow, registry, run, services
from ..outbox_support import NOW

#: A sample's value by its name and labels: SAMPLES[("sac_ivr_calls_ended_total", (("outcome", "contained"),))].
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Scrape = Callable[[], Awaitable[Samples]]

MENU = """
flow: m
start: menu
nodes:
  menu:
    menu:
      prompt: main_menu
      options: {"1": {go: who}, "0": {go: who}}
      no_input: {retries: 1, prompt: didnt_hear}
      then: bye
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: bye, not_found: bye, error: bye}
  bye:
    hangup: goodbye
"""


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def served() -> AsyncIterator[tuple[PrometheusMetrics, Scrape]]:
    """A unit's metrics on a free loopback port, and a scraper reading them over HTTP."""
    metrics = PrometheusMetrics()
    async with metrics_server(MetricsSettings(port=0), metrics) as port, aiohttp.ClientSession() as http:

        async def scrape() -> Samples:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=")
                text = await response.text()
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }

        yield metrics, scrape


async def test_a_contained_call_is_counted_with_each_node_it_visited(served: tuple[PrometheusMetrics, Scrape]) -> None:
    metrics, scrape = served
    before = await scrape()
    assert sample(before, "sac_ivr_calls_ended_total", outcome="contained") == 0  # listed before any call
    svc = services()
    svc.metrics = metrics
    result, _, _ = await run(MENU, ["1"], svc=svc)
    await run(MENU, ["0"], svc=svc)
    assert result.outcome is Outcome.ENDED
    after = await scrape()
    assert sample(after, "sac_ivr_calls_ended_total", outcome="contained") == 2
    assert sample(after, "sac_ivr_calls_in_progress") == 0
    for node in ("menu", "who", "bye"):
        assert sample(after, "sac_ivr_node_visits_total", flow="m", node=node) == 2
    assert sample(after, "sac_ivr_protocol_allocation_seconds_count") == 2
    assert sample(after, "sac_ivr_backend_seconds_count", operation="customer_by_caller_id") == 2
    assert sample(after, "sac_ivr_backend_errors_total", operation="customer_by_caller_id", status="error") == 0


async def test_a_call_is_in_progress_until_it_ends(served: tuple[PrometheusMetrics, Scrape]) -> None:
    metrics, scrape = served
    during: list[float] = []

    async def look_while_on_the_line(ctx: OperationContext) -> OperationResult:
        during.append(sample(await scrape(), "sac_ivr_calls_in_progress"))
        return OperationResult.not_found()

    svc = services(operations=registry().with_handlers({"customer_by_caller_id": look_while_on_the_line}))
    svc.metrics = metrics
    await run(MENU, ["1"], svc=svc)
    assert during == [1]
    assert sample(await scrape(), "sac_ivr_calls_in_progress") == 0


async def test_a_failing_back_end_is_counted_per_operation_and_status(served: tuple[PrometheusMetrics, Scrape]) -> None:
    metrics, scrape = served

    async def down(ctx: OperationContext) -> OperationResult:
        raise BackendError("connection refused")

    svc = services(operations=registry().with_handlers({"customer_by_caller_id": down}))
    svc.metrics = metrics
    result, _, _ = await run(MENU, ["1"], svc=svc)
    assert result.path == ["menu", "who", "bye"]  # the flow went on by its error branch
    samples = await scrape()
    assert sample(samples, "sac_ivr_backend_errors_total", operation="customer_by_caller_id", status="error") == 1
    assert sample(samples, "sac_ivr_backend_seconds_count", operation="customer_by_caller_id") == 1
    assert sample(samples, "sac_ivr_calls_ended_total", outcome="contained") == 1  # the call itself was fine


async def test_input_failures_and_hang_ups_are_counted_where_they_happened(
    served: tuple[PrometheusMetrics, Scrape],
) -> None:
    metrics, scrape = served
    svc = services()
    svc.metrics = metrics
    await run(MENU, ["silence", "silence"], svc=svc)  # no answer, twice: the menu gives up
    await run(MENU, ["silence", "hangup"], svc=svc)  # no answer, then gone while asked again
    samples = await scrape()
    assert sample(samples, "sac_ivr_input_failures_total", flow="m", node="menu", kind="no_input") == 1
    assert sample(samples, "sac_ivr_input_failures_total", flow="m", node="bye", kind="no_input") == 0
    assert sample(samples, "sac_ivr_calls_ended_total", outcome="contained") == 1
    assert sample(samples, "sac_ivr_calls_ended_total", outcome="hangup") == 1
    assert sample(samples, "sac_ivr_node_visits_total", flow="m", node="menu") == 2


async def test_a_protocol_from_the_fallback_range_is_counted(
    served: tuple[PrometheusMetrics, Scrape], tmp_path: Path
) -> None:
    metrics, scrape = served
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'absent' / 'ivr.sqlite3'}")  # no such directory: down
    protocols = StoreProtocolAllocator(
        store,
        FallbackRange(tmp_path / "protocol_fallback.json", 9_000_000, 9_000_099),
        timeout_s=1.0,
        clock=lambda: NOW,
        metrics=metrics,
    )
    svc = services()
    svc.metrics, svc.protocols = metrics, protocols
    try:
        result, _, _ = await run(MENU, ["1"], svc=svc)
    finally:
        await protocols.aclose()
        await store.aclose()
    assert int(result.protocol[4:11]) == 9_000_000
    samples = await scrape()
    assert sample(samples, "sac_ivr_protocol_fallbacks_total") == 1
    assert sample(samples, "sac_ivr_protocol_allocation_seconds_count") == 1


async def test_queue_waits_come_from_the_agents_answer_or_the_callers_abandon(
    served: tuple[PrometheusMetrics, Scrape],
) -> None:
    metrics, scrape = served
    metrics.on_queue_event({"Event": "AgentConnect", "Queue": "technical", "HoldTime": "12", "Uniqueid": "1.1"})
    metrics.on_queue_event({"Event": "QueueCallerAbandon", "Queue": "technical", "HoldTime": "45", "Uniqueid": "1.2"})
    metrics.on_queue_event({"Event": "AgentComplete", "Queue": "technical", "HoldTime": "12", "TalkTime": "300"})
    samples = await scrape()
    answered = {"queue": "technical", "outcome": "answered"}
    assert sample(samples, "sac_ivr_queue_wait_seconds_count", **answered) == 1
    assert sample(samples, "sac_ivr_queue_wait_seconds_sum", **answered) == 12
    assert sample(samples, "sac_ivr_queue_wait_seconds_bucket", **answered, le="15.0") == 1
    assert sample(samples, "sac_ivr_queue_wait_seconds_sum", queue="technical", outcome="abandoned") == 45


async def test_the_outbox_depth_is_counted_per_channel_at_each_scrape(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}")
    await upgrade(store)
    outbox = Outbox(store, clock=lambda: NOW)  # no senders here: messages wait
    metrics = PrometheusMetrics()
    store_down = False

    async def pending() -> Mapping[str, int]:
        if store_down:
            raise StoreUnavailable("store unavailable: connection refused")
        return await outbox.pending_by_channel()

    message = NewMessage(OutboxChannel.EMAIL, "ana@example.com", "summary", "body")
    try:
        async with (
            metrics_server(MetricsSettings(port=0), metrics, outbox_pending=pending) as port,
            aiohttp.ClientSession() as http,
        ):

            async def scrape() -> Mapping[str, float]:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    text = await response.text()
                family = next(f for f in text_string_to_metric_families(text) if f.name == "sac_ivr_outbox_pending")
                return {s.labels["channel"]: s.value for s in family.samples}

            assert await scrape() == {"email": 0, "whatsapp": 0, "screen_pop": 0}
            await outbox.enqueue(message, message, NewMessage(OutboxChannel.WHATSAPP, "31988887777", "summary", "b"))
            assert await scrape() == {"email": 2, "whatsapp": 1, "screen_pop": 0}
            store_down = True  # the scrape still answers, with the last count
            assert await scrape() == {"email": 2, "whatsapp": 1, "screen_pop": 0}
    finally:
        await store.aclose()


async def test_a_call_over_the_demo_store_is_counted(served: tuple[PrometheusMetrics, Scrape], tmp_path: Path) -> None:
    metrics, scrape = served
    settings = load_settings()
    async with demo_services(settings, tmp_path, clock=ManualClock(NOW)) as svc:
        svc.metrics = metrics
        channel = ScriptedChannel(CallInfo(caller_id=KNOWN_CALLER, dialled="30033336"), ["1"])
        result = await run_call(flow(MENU), channel, svc, settings=settings)
    assert result.variables["me"]["status"] == "found"
    samples = await scrape()
    assert sample(samples, "sac_ivr_calls_ended_total", outcome="contained") == 1
    assert sample(samples, "sac_ivr_backend_seconds_count", operation="customer_by_caller_id") == 1
    assert sample(samples, "sac_ivr_node_visits_total", flow="m", node="who") == 1


async def test_a_port_taken_leaves_the_unit_without_metrics_but_running(caplog: pytest.LogCaptureFixture) -> None:
    async with metrics_server(MetricsSettings(port=0), PrometheusMetrics()) as taken:
        assert taken is not None
        async with metrics_server(MetricsSettings(port=taken), PrometheusMetrics()) as port:
            assert port is None
    assert f"cannot listen on 127.0.0.1:{taken}" in caplog.text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "metrics.example.com"])
def test_a_host_beyond_loopback_must_be_allowed_explicitly(host: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address.*allow_remote"):
        load_settings(metrics={"host": host})
    assert load_settings(metrics={"host": host, "allow_remote": True}).metrics.host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_hosts_need_no_permission(host: str) -> None:
    assert load_settings(metrics={"host": host}).metrics.host == host
