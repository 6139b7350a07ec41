"""Wiring: the store's ports and the operations into `Services`, the published flows into the FastAGI server.

Nothing else in the product builds these objects, so the simulator, the flow tests and a real call run
the same operations over the same store. Every part of a call reads the one clock given here: `serve`
and the simulator give the system clock, flow tests the moment their file or case names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from integrations.catalog import build_operations, declared_registry
from integrations.messaging.email import SmtpSender
from integrations.messaging.outbox import Outbox, Sender
from integrations.messaging.screen_pop import ScreenPops, ScreenPopSender
from integrations.messaging.whatsapp import WhatsAppSender
from integrations.speech import NoSpeechBackend
from integrations.speech.google import GoogleRecognizer
from ivr import logs, phone
from ivr.agi.admission import Admission
from ivr.agi.recording import delete_older
from ivr.ami.client import AmiClient, AmiError
from ivr.ami.live import LiveModel, serve_snapshots
from ivr.ami.queues import AmiQueueWatch
from ivr.asterisk.root import agi_secret, ami_secret, prompts_target
from ivr.clock import Clock, system_clock
from ivr.config import EmailSettings, ScreenPopSettings, Settings, SpeechSettings, WhatsAppSettings
from ivr.engine.channel import Channel
from ivr.engine.context import Outcome
from ivr.engine.interpreter import run_call
from ivr.engine.ports import Metrics, NoMetrics, Services
from ivr.flows.checks import Report, check_paths
from ivr.flows.flowtest import ServicesFactory
from ivr.flows.impact import Impact, ImpactRefused, measure, replay_calls
from ivr.flows.library import FlowLibrary, NothingPublished
from ivr.metrics import QUEUE_WAIT_ENDS, PrometheusMetrics, metrics_server
from ivr.store.announcements import StoreAnnouncements
from ivr.store.callbacks import StoreCallbackBook
from ivr.store.calls import StoreCallRecorder, mark_lost_calls
from ivr.store.db import Store, StoreUnavailable, open_store, private_directory
from ivr.store.events import StoreEventSink
from ivr.store.migrate import new_sqlite_store, upgrade
from ivr.store.models import OutboxChannel
from ivr.store.protocols import FallbackRange, StoreProtocolAllocator
from ivr.store.replays import recorded_calls
from ivr.store.seed import seed, stand_in

log = logging.getLogger(__name__)

#: How often the live model's count of call backs owed is read from the store (they change slowly).
CALLBACKS_OWED_POLL_S = 5.0
#: How often recordings past their retention are looked for (the retention is counted in days).
RECORDINGS_SWEEP_S = 3600.0


class CallFailed(Exception):
    """The engine could not finish the call; the dialplan's fallback queue takes the caller."""


@asynccontextmanager
async def build_services(settings: Settings, *, clock: Clock) -> AsyncIterator[Services]:
    """Services over the configured store, migrated to the current schema, all reading `clock`; closed
    (flushed) on exit."""
    async with _unit(settings, clock=clock) as (services, _):
        yield services


@asynccontextmanager
async def _unit(
    settings: Settings, *, clock: Clock, metrics: Metrics | None = None
) -> AsyncIterator[tuple[Services, Outbox]]:
    """`build_services`, with the outbox they write to (`serve` queues screen pops in it too), counting in
    `metrics` when given (`serve`'s)."""
    conf = settings.store
    metrics = metrics or NoMetrics()
    recognizer = _recognizer(settings.speech)
    store = Store(settings.database_url, busy_timeout_s=conf.busy_timeout_s)
    try:
        await upgrade(store)
        events = StoreEventSink(
            store,
            batch_size=conf.event_batch_size,
            flush_interval_s=conf.event_flush_interval_s,
            max_buffer=conf.event_buffer_max,
            retry_max_s=conf.event_retry_max_s,
        )
        await events.start()
        first, last = settings.unit_fallback_range
        protocols = StoreProtocolAllocator(
            store,
            FallbackRange(settings.var_dir / "protocol_fallback.json", first, last),
            timeout_s=conf.allocate_timeout_s,
            clock=clock,
            timezone=settings.timezone,
            metrics=metrics,
        )
        outbox = Outbox(store, _senders(settings, clock=clock), clock=clock, conf=settings.outbox)
        operations, summaries = build_operations(store, outbox=outbox, settings=settings, clock=clock)
        await outbox.start()
        try:
            yield Services(
                operations=operations,
                events=events,
                protocols=protocols,
                recognizer=recognizer,
                calls=StoreCallRecorder(events, clock=clock),
                summaries=summaries,
                callbacks=StoreCallbackBook(store, clock=clock, conf=settings.callbacks, timezone=settings.timezone),
                clock=clock,
                announcements=StoreAnnouncements(
                    store,
                    clock=clock,
                    prompts_dir=settings.prompts_dir,
                    sounds_dir=prompts_target(settings) if settings.asterisk_root.is_dir() else None,
                    voice=settings.voice.espeak_voice,
                    words_per_minute=settings.voice.words_per_minute,
                ),
                metrics=metrics,
            ), outbox
        finally:
            await operations.aclose()  # the carrier API's connections, with `backend: http`
            await protocols.aclose()
            await events.aclose()
            await outbox.aclose()
    finally:
        await store.aclose()
        await recognizer.aclose()


def _recognizer(conf: SpeechSettings) -> GoogleRecognizer | NoSpeechBackend:
    """Google Speech-to-Text when an endpoint is configured; otherwise spoken answers go unheard and
    menus fall back to their keys."""
    if conf.endpoint is None:
        return NoSpeechBackend()
    log.info("speech recognition: %s (%s, model %s)", conf.endpoint, conf.language_code, conf.model)
    return GoogleRecognizer(conf)


@asynccontextmanager
async def demo_services(
    settings: Settings, directory: Path, *, clock: Clock, database_url: str | None = None
) -> AsyncIterator[Services]:
    """Services over a fresh store (SQLite in `directory` unless an empty database is given), seeded with
    the demo customers as of ``clock()``, everything reading `clock`: what flow tests run against, so a
    case sees the same data at the same distance from its moment on every machine and never touches the
    live store. It sends no e-mail, WhatsApp or screen pop: the demo accounts' addresses and numbers are not
    ours to write to, so messages stay in the demo store's outbox."""
    url = database_url or await new_sqlite_store(directory / "demo.sqlite3")
    # The seeded store answers every operation: a flow test never reaches the carrier's live systems.
    demo = settings.model_copy(
        update={
            "database_url": url,
            "var_dir": directory,
            "email": EmailSettings(),
            "whatsapp": WhatsAppSettings(),
            "screen_pop": ScreenPopSettings(),
            "backend": "builtin",
            # No Asterisk plays these calls: announcements' audio is not copied into one's sounds.
            "asterisk": settings.asterisk.model_copy(update={"root": directory / "no-asterisk"}),
        }
    )
    store = Store(demo.database_url, busy_timeout_s=demo.store.busy_timeout_s)
    try:
        if database_url:
            await upgrade(store)
        await seed(store, now=clock(), timezone=settings.timezone)
    finally:
        await store.aclose()
    async with build_services(demo, clock=clock) as services:
        yield services


def demo_factory(settings: Settings) -> ServicesFactory:
    """`demo_services` on a temporary directory of its own each time, removed when done."""

    @asynccontextmanager
    async def fresh(clock: Clock) -> AsyncIterator[Services]:
        with tempfile.TemporaryDirectory(prefix="ivr-demo-") as directory:
            async with demo_services(settings, Path(directory), clock=clock) as services:
                yield services

    return fresh


async def flow_impact(
    draft: Path, *, settings: Settings, clock: Clock, days: int = 7, limit: int = 2000
) -> Impact:
    """What publishing `draft` would change for the calls of the last `days` days (the newest `limit` of
    them): each replayed against the current release and against the draft on demo stores, so nothing is
    sent and no real ticket opened (`ivr.flows.impact`). For ``ivr flow impact`` and the web console.

    Raises `ImpactRefused`: `draft` is not a directory of flows, the checker refuses it (impact is only
    computed for a draft that would publish; the checker's report is attached), nothing is published to
    compare with, or the store cannot be read."""
    if days < 1 or limit < 1:
        raise ImpactRefused("the days and the limit must be at least 1")
    if not draft.is_dir():
        raise ImpactRefused(f"{draft} is not a directory of flows")
    registry = declared_registry()
    words = settings.voice.words_per_minute
    report = check_paths([draft], catalogue=settings.prompts_dir, registry=registry, words_per_minute=words)
    if not report.flows and not report.problems:
        raise ImpactRefused(f"no flow files (*.yaml) in {draft}")
    if not report.ok:
        raise ImpactRefused(f"{draft} fails its checks, so it would not publish: fix the errors first", report)
    library = FlowLibrary.of(settings, registry=registry, clock=clock)
    try:
        served = library.reload()
    except NothingPublished as exc:
        raise ImpactRefused(f"{exc}: there is no release to compare the draft with") from exc
    if not served.ok:
        raise ImpactRefused("the current release fails today's checks: there is nothing sound to compare with", served)
    entry = library.current_entry()
    release = f"current release ({entry.number}, version {entry.version})" if entry else f"version {library.version}"
    until = clock()
    since = until - timedelta(days=days)
    store = open_store(settings)
    try:
        in_window, calls = await recorded_calls(store, since, until, limit=limit)
    except StoreUnavailable as exc:
        raise ImpactRefused(f"the calls cannot be read from the store: {exc}") from exc
    finally:
        await store.aclose()
    results, skipped = await replay_calls(
        calls, release=library.snapshot().flows, draft=report.flows, make_services=demo_factory(settings),
        settings=settings, stand_in=stand_in(), now=until,
    )  # fmt: skip
    zone = ZoneInfo(settings.timezone)
    return measure(
        calls, results, skipped, release=release, draft=str(draft), since=since.astimezone(zone),
        until=until.astimezone(zone), in_window=in_window,
    )  # fmt: skip


def _senders(settings: Settings, *, clock: Clock) -> dict[OutboxChannel, Sender]:
    """The outbox channels this process sends; an unconfigured one leaves its messages waiting."""
    senders: dict[OutboxChannel, Sender] = {}
    if settings.email.host:
        senders[OutboxChannel.EMAIL] = SmtpSender(settings.email)
    else:
        log.warning("e-mail not configured (IVR_EMAIL__HOST): e-mails wait in the outbox")
    if settings.whatsapp.configured:
        senders[OutboxChannel.WHATSAPP] = WhatsAppSender(settings.whatsapp)
    else:
        log.warning("WhatsApp not configured (IVR_WHATSAPP__PHONE_NUMBER_ID, IVR_WHATSAPP__TOKEN): messages wait")
    if settings.screen_pop.url:
        senders[OutboxChannel.SCREEN_POP] = ScreenPopSender(settings.screen_pop, clock=clock)
    return senders


@asynccontextmanager
async def ami_client(settings: Settings) -> AsyncIterator[AmiClient]:
    """The unit's one AMI connection (the queues' state before a caller joins, the call back dialer, the live
    model). Logging in happens in the background: an Asterisk not up yet must not hold the FastAGI start,
    panoramisk keeps reconnecting, and until it answers callers join queues untold and call backs wait."""
    # The secret `ivr asterisk provision` wrote into manager.conf: the configured one or this machine's own.
    client = AmiClient(settings.ami.model_copy(update={"secret": SecretStr(ami_secret(settings))}))

    async def connect() -> None:
        try:
            await client.connect()
        except AmiError as exc:
            log.warning("%s: until AMI answers, callers join queues untold and call backs wait", exc)

    connecting = asyncio.create_task(connect(), name="ami-connect")
    try:
        yield client
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        await client.close()


def served_library(settings: Settings) -> FlowLibrary:
    """The published flows; on a first start with nothing published, the flows directory is checked and
    published. A release that fails its checks stops the start: a server with nothing to serve would
    send every caller to the fallback queue."""
    library = FlowLibrary.of(settings, registry=declared_registry(), clock=system_clock)
    try:
        report = library.reload()
    except NothingPublished:
        log.info("no flows published yet: publishing %s", settings.flows_dir)
        report = library.publish(settings.flows_dir, who="ivr serve (first start)")
    if not report.ok:
        raise SystemExit(f"ivr serve: the flows to serve fail their checks:\n{report.render()}")
    return library


@dataclass(frozen=True)
class Worker:
    """One of the processes of ``ivr serve --workers N`` (ivr.supervisor starts them), `index` 0 to N-1."""

    index: int
    count: int

    @property
    def leads(self) -> bool:
        """Worker 0 alone does what one unit must do once: dial the call backs (one dialer counting the free
        agents, not N), queue the screen pops and count the queue waits (every worker's AMI connection
        hears each AgentConnect), delete the recordings past their retention."""
        return self.index == 0


async def serve(settings: Settings, worker: Worker | None = None) -> int:
    """Run the FastAGI server over the published flows until SIGTERM; SIGHUP re-reads the published release.
    As a `worker`, it shares the FastAGI port with the others (SO_REUSEPORT) and has a live socket and a
    metrics port of its own (`live_socket`, `worker_metrics`)."""
    from ivr.agi.server import serve as serve_agi

    private_directory(settings.var_dir)  # the default database, the fallback protocols' journal, the live socket
    library = served_library(settings)
    metrics = PrometheusMetrics() if settings.metrics.enabled else None
    leads = worker is None or worker.leads
    async with (
        _unit(settings, clock=system_clock, metrics=metrics) as (services, outbox),
        ami_client(settings) as ami,
        live_model(services, ami, socket=live_socket(settings, worker)) as live,
        _metrics(worker_metrics(settings, worker), metrics, outbox, ami, queue_waits=leads),
        recordings_retention(settings, clock=system_clock) if leads else contextlib.nullcontext(),
    ):
        if worker is None:  # (a supervisor does it once for its workers)
            await close_lost_calls(settings, clock=system_clock)  # before the first call is taken
        services.queues = AmiQueueWatch(ami, timeout_s=settings.queue_wait.state_timeout_s)

        async def handle_call(channel: Channel, flow_name: str) -> None:
            flows = library.snapshot()  # the call keeps this release until it ends
            result = await run_call(flows[flow_name], channel, services, flows=flows.flows, settings=settings)
            # This task is the call's own: what the FastAGI server logs of it from here (a failure) carries it too.
            logs.call_protocol.set(result.protocol)
            if result.outcome is Outcome.FAILED:
                raise CallFailed(f"call {result.protocol} failed: {result.reason}")

        async def reload() -> None:
            await reload_flows(library)
            live.serving(library.version)

        live.serving(library.version)
        log.info(
            "FastAGI on %s:%d serving flows version %s", settings.agi.host, settings.agi.port, library.version
        )
        async with contextlib.AsyncExitStack() as duties:
            if leads:
                await duties.enter_async_context(_callback_dialer(settings, services, ami))
                await duties.enter_async_context(_screen_pops(settings, outbox, ami))
            admission = Admission.of(settings, agi_secret(settings))
            return await serve_agi(
                handle_call, settings, admission=admission, on_reload=reload, reuse_port=worker is not None
            )


@asynccontextmanager
async def recordings_retention(settings: Settings, *, clock: Clock) -> AsyncIterator[None]:
    """Recordings kept for the teams are deleted once past the retention period: at start, then every
    `RECORDINGS_SWEEP_S`, off the event loop (a directory of many files must not stall calls)."""
    retention = timedelta(days=settings.asterisk.recordings_retention_days)

    async def sweep() -> None:
        while True:  # until the unit stops
            try:
                deleted = await asyncio.to_thread(delete_older, settings.recordings_path, clock() - retention)
            except OSError as exc:
                log.error("recordings past their retention could not be deleted: %s", exc)
            else:
                if deleted:
                    log.info("deleted %d recording(s) kept over %g days", deleted, retention.days)
            await asyncio.sleep(RECORDINGS_SWEEP_S)

    task = asyncio.create_task(sweep(), name="recordings-retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def close_lost_calls(settings: Settings, *, clock: Clock) -> int:
    """Calls a crash left open (a ``calls`` row with no end) get the outcome ``lost``, once no unit sharing
    the store can still be carrying them (`ivr.store.calls.mark_lost_calls`). A store that does not answer
    does not stop the start: the calls are marked at a later one."""
    store = open_store(settings)
    try:
        lost = await mark_lost_calls(store, started_before=clock() - timedelta(seconds=settings.asterisk.max_call_s))
    except StoreUnavailable as exc:
        log.warning("calls left open by a crash not marked lost now: %s", exc)
        return 0
    finally:
        await store.aclose()
    if lost:
        log.warning("%d call(s) left open by a crash marked lost", lost)
    return lost


async def reload_flows(library: FlowLibrary) -> Report:
    """SIGHUP: re-read and check the published release in a worker thread. Checking a large (or hostile)
    flow set takes CPU time the calls in progress, all on this event loop, must not wait for."""
    report = await asyncio.to_thread(library.reload)
    if not report.ok:
        log.error("published flows refused; still serving version %s", library.version)
    return report


def live_socket(settings: Settings, worker: Worker | None = None) -> Path:
    """Where a running `ivr serve` answers `ivr live` and the web console with its live snapshot: with
    workers, the supervisor answers there with all its workers' calls, each worker on ``live-<index>.sock``."""
    return settings.var_dir / ("live.sock" if worker is None else f"live-{worker.index}.sock")


def worker_metrics(settings: Settings, worker: Worker | None) -> Settings:
    """Worker `index` serves its /metrics at metrics.port + index (port 0: each a free port): one registry
    per process, so Prometheus scrapes each worker and sums them."""
    if worker is None or settings.metrics.port == 0:
        return settings
    port = settings.metrics.port + worker.index
    return settings.model_copy(update={"metrics": settings.metrics.model_copy(update={"port": port})})


@asynccontextmanager
async def live_model(services: Services, ami: AmiClient, *, socket: Path) -> AsyncIterator[LiveModel]:
    """The unit's live model: its calls told by the engine (`services.watch`), the queues from the unit's
    AMI connection (resynchronised at each login), the call backs owed read from the store's book; its
    snapshot, and each change after it, given to whoever opens `socket` (`serve_snapshots`)."""
    live = LiveModel(services.clock)
    live.attach(ami)
    services.watch = live
    counting = None
    if isinstance(services.callbacks, StoreCallbackBook):
        counting = asyncio.create_task(_count_callbacks_owed(services.callbacks, live), name="live-callbacks")
    try:
        async with serve_snapshots(socket, live):
            yield live
    finally:
        if counting is not None:
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await counting
        await live.aclose()


async def _count_callbacks_owed(book: StoreCallbackBook, live: LiveModel) -> None:
    while True:  # until live_model cancels it
        try:
            live.set_callbacks_pending(await book.owed_by_team())
        except StoreUnavailable as exc:
            log.warning("live model: call backs owed unknown (%s); the last count stands", exc)
        await asyncio.sleep(CALLBACKS_OWED_POLL_S)


@asynccontextmanager
async def _metrics(
    settings: Settings, metrics: PrometheusMetrics | None, outbox: Outbox, ami: AmiClient, *, queue_waits: bool
) -> AsyncIterator[None]:
    """/metrics on settings.metrics' address, with the queue waits from AMI (when `queue_waits`) and the
    outbox's depth counted at each scrape; nothing when metrics are disabled."""
    if metrics is None:
        log.info("metrics off (metrics.enabled false)")
        yield
        return
    if queue_waits:
        for event in QUEUE_WAIT_ENDS:
            ami.on_event(event, metrics.on_queue_event)
    async with metrics_server(settings.metrics, metrics, outbox_pending=outbox.pending_by_channel):
        yield


@asynccontextmanager
async def _screen_pops(settings: Settings, outbox: Outbox, ami: AmiClient) -> AsyncIterator[None]:
    """A screen pop queued for each agent answering a call from the IVR, unless screen_pop.url is empty."""
    if not settings.screen_pop.url:
        log.info("screen pops off (screen_pop.url empty): agents see the call's channel variables only")
        yield
        return
    pops = ScreenPops(outbox, clock=system_clock)
    ami.on_event("AgentConnect", pops.on_agent_connect)
    log.info("screen pops to %s", settings.screen_pop.url)
    try:
        yield
    finally:
        await pops.aclose()  # before the outbox closes


@asynccontextmanager
async def _callback_dialer(settings: Settings, services: Services, ami: AmiClient) -> AsyncIterator[None]:
    """The call back dialer over the unit's AMI connection, unless disabled (settings callbacks.enabled).
    An AMI not up yet only delays it: the client keeps reconnecting and the dialer waits for it."""
    from ivr.dialer import Dialer

    if not settings.callbacks.enabled or not isinstance(services.callbacks, StoreCallbackBook):
        log.info("call back dialer disabled: call backs wait in the book")
        yield
        return
    dialer = Dialer(
        services.callbacks,
        ami,
        conf=settings.callbacks,
        caller_id=phone.for_trunk(settings.page.sac_number, settings.sip.trunk_number_format),
        trunk_number_format=settings.sip.trunk_number_format,
        reply_timeout_s=settings.ami.action_timeout_s,
    )

    await dialer.start()
    log.info("call back dialer %s started", dialer.unit)
    try:
        yield
    finally:
        await dialer.aclose()
