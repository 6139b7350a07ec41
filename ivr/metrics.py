"""The unit's Prometheus metrics: what ``ivr serve``'s calls did, served at ``http://<metrics.host>:<port>/metrics``.

`PrometheusMetrics` implements the engine's `ivr.engine.ports.Metrics` (so the engine never imports
prometheus_client, and flow tests and the simulator count nothing) on a registry of its own (not the
library's global one: two units in one test process never share a count). It also folds two AMI events
into the queue waits, and is told the outbox's depth just before each scrape (`metrics_server`).

Every label value is bounded: outcomes and statuses are enums, flows, nodes and operations come from the
published flows and the operation registry, queues from Asterisk's configuration. A protocol or a caller
number is never a label.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from ivr.ami.client import int_field
from ivr.config import MetricsSettings

log = logging.getLogger(__name__)

#: The engine's call outcomes as the metric names them: a call the flow ended itself was contained.
CALL_OUTCOMES = {"ended": "contained", "hangup": "hangup", "failed": "failed", "queue": "queue", "transfer": "transfer"}
#: Node-visit outcomes that are a caller's input going wrong.
INPUT_FAILURES = frozenset({"no_input", "no_match", "invalid"})
#: Operation statuses counted as back-end errors (not_found is an answer).
BACKEND_ERRORS = frozenset({"error", "timeout"})
#: AMI events that end a queue wait, with what they carry (HoldTime, the seconds waited).
QUEUE_WAIT_ENDS = {"AgentConnect": "answered", "QueueCallerAbandon": "abandoned"}
#: How long a scrape waits for the outbox's count before serving the last one.
OUTBOX_COUNT_TIMEOUT_S = 1.0

M = TypeVar("M", bound=MetricWrapperBase)


class _Children(Generic[M]):
    """A labelled metric's children kept by their label values: `labels()` checks the values and takes a
    lock each time (1.7 µs), a dict lookup a third of that, and a call visits a dozen nodes. The label
    values are bounded (see the module), so is this."""

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class PrometheusMetrics:
    """`ivr.engine.ports.Metrics` on a registry of its own, plus the queue waits and the outbox's depth."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._in_progress = Gauge("sac_ivr_calls_in_progress", "Calls being handled by the engine.", registry=r)
        self._ended = _Children(
            Counter(
                "sac_ivr_calls_ended",
                "Calls ended, by outcome (contained: the flow ended it).",
                ["outcome"],
                registry=r,
            )
        )
        self._visits = _Children(
            Counter("sac_ivr_node_visits", "Nodes visited, by flow and node.", ["flow", "node"], registry=r)
        )
        self._input_failures = Counter(
            "sac_ivr_input_failures",
            "Nodes left because the caller's input failed (no_input, no_match, invalid).",
            ["flow", "node", "kind"],
            registry=r,
        )
        self._backend_seconds = _Children(
            Histogram(
                "sac_ivr_backend_seconds",
                "Time for an operation to answer a call, by operation.",
                ["operation"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
                registry=r,
            )
        )
        self._backend_errors = Counter(
            "sac_ivr_backend_errors",
            "Operations that failed (error, timeout), by operation and status.",
            ["operation", "status"],
            registry=r,
        )
        self._allocation_seconds = Histogram(
            "sac_ivr_protocol_allocation_seconds",
            "Time for a call to get its protocol (the one write a call waits for).",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5),
            registry=r,
        )
        self._fallbacks = Counter(
            "sac_ivr_protocol_fallbacks", "Protocols issued from the local fallback range.", registry=r
        )
        self._outbox_pending = Gauge(
            "sac_ivr_outbox_pending", "Messages waiting in the outbox, by channel.", ["channel"], registry=r
        )
        self._queue_wait = Histogram(
            "sac_ivr_queue_wait_seconds",
            "Time from joining a queue to an agent answering or the caller abandoning, by queue and outcome.",
            ["queue", "outcome"],
            buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800),
            registry=r,
        )
        for outcome in CALL_OUTCOMES.values():  # present at 0 from the start, so rates work from the first call
            self._ended(outcome)

    # --- the engine's port ------------------------------------------------------------------------------

    def call_started(self) -> None:
        self._in_progress.inc()

    def call_ended(self, outcome: str) -> None:
        self._in_progress.dec()
        self._ended(CALL_OUTCOMES.get(outcome, "failed")).inc()

    def node_visited(self, flow: str, node: str, outcome: str) -> None:
        self._visits(flow, node).inc()
        if outcome in INPUT_FAILURES:
            self._input_failures.labels(flow, node, outcome).inc()

    def operation_done(self, operation: str, status: str, seconds: float) -> None:
        self._backend_seconds(operation).observe(seconds)
        if status in BACKEND_ERRORS:
            self._backend_errors.labels(operation, status).inc()

    def protocol_allocated(self, seconds: float) -> None:
        self._allocation_seconds.observe(seconds)

    def protocol_fell_back(self) -> None:
        self._fallbacks.inc()

    # --- the rest of the unit -----------------------------------------------------------------------------

    def on_queue_event(self, event: Mapping[str, Any]) -> None:
        """An AMI event; AgentConnect and QueueCallerAbandon end a wait, whose length they carry."""
        outcome = QUEUE_WAIT_ENDS.get(str(event.get("Event", "")))
        queue = str(event.get("Queue", ""))
        if outcome and queue:
            self._queue_wait.labels(queue, outcome).observe(int_field(event.get("HoldTime")))

    def set_outbox_pending(self, by_channel: Mapping[str, int]) -> None:
        for channel, count in by_channel.items():
            self._outbox_pending.labels(channel).set(count)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


@asynccontextmanager
async def metrics_server(
    conf: MetricsSettings,
    metrics: PrometheusMetrics,
    *,
    outbox_pending: Callable[[], Awaitable[Mapping[str, int]]] | None = None,
) -> AsyncIterator[int | None]:
    """Serve ``/metrics`` on the event loop (aiohttp) at conf.host:conf.port until the block ends; yields the
    bound port (conf.port 0 takes a free one), or None when the address cannot be taken: that is logged as
    an error and the unit goes on answering calls, which matter more than being watched. Before each
    scrape, `outbox_pending` is asked for the outbox's depth (bounded by OUTBOX_COUNT_TIMEOUT_S; when it
    fails the last depth is served)."""
    counting = asyncio.Lock()  # concurrent scrapes share one count rather than queue several

    async def scrape(request: web.Request) -> web.Response:
        if outbox_pending is not None and not counting.locked():
            async with counting:
                try:
                    async with asyncio.timeout(OUTBOX_COUNT_TIMEOUT_S):
                        metrics.set_outbox_pending(await outbox_pending())
                except (TimeoutError, ConnectionError) as exc:  # the store's StoreUnavailable is one
                    log.warning("metrics: outbox depth not counted (%s); the last count is served", exc or "slow")
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, conf.host, conf.port).start()
        except OSError as exc:  # the port is taken (another unit on this host?) or the address is not ours
            log.error("metrics: cannot listen on %s:%d (%s); serving calls without /metrics", conf.host, conf.port, exc)
            yield None
            return
        port = int(runner.addresses[0][1])
        log.info("metrics at http://%s:%d/metrics", conf.host, port)
        yield port
    finally:
        await runner.cleanup()
