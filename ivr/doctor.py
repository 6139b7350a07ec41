"""`ivr doctor`: is every peer this IVR depends on there, and set up the way the settings say?

Each check talks to its real peer (the database, Asterisk's AMI, the FastAGI port, the carrier API, the
SMTP server, the speech endpoint, the agents' screen pop receiver) or reads what `ivr serve` would read
(prompt audio, published flows), and says in one line what is wrong and how to fix it. The checks run
concurrently, each bounded by `timeout_s`, so a peer that never answers costs one time-out, not a hang.

    findings = await diagnose(settings, timeout_s=5)
    print(render(findings))   # "ok   database  ...", "FAIL ami  ..."
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from ivr.config import Settings


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"  # works, but something will surprise someone (nothing seeded, changes not published)
    FAIL = "FAIL"  # calls will fail or lose something until this is fixed


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    detail: str  # what was found and, when not ok, how to fix it


Check = Callable[[Settings, float], Awaitable[Finding]]


async def diagnose(settings: Settings, *, timeout_s: float = 5.0) -> list[Finding]:
    """Every check, run concurrently, in a fixed order; each bounded by `timeout_s`."""
    checks: list[tuple[str, Check]] = [
        ("database", check_database),
        ("ami", check_ami),
        ("fastagi", check_fastagi),
        ("carrier_api", check_carrier_api),
        ("smtp", check_smtp),
        ("whatsapp", check_whatsapp),
        ("speech", check_speech),
        ("screen_pop", check_screen_pop),
        ("prompts", check_prompts),
        ("flows", check_flows),
        ("recordings", check_recordings),
    ]

    async def bounded(name: str, check: Check) -> Finding:
        try:
            async with asyncio.timeout(timeout_s):
                return await check(settings, timeout_s)
        except TimeoutError:
            return Finding(name, Status.FAIL, f"no answer within {timeout_s:g} s (is the peer up and reachable?)")

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(bounded(name, check)) for name, check in checks]
    return [settings_finding(), *(task.result() for task in tasks)]


def settings_finding() -> Finding:
    """Settings that loaded (a broken file or value never gets this far: see `ivr.cli.doctor`)."""
    source = os.environ.get("IVR_CONFIG")
    where = f"{source} and the IVR_* environment" if source else "defaults and the IVR_* environment (no IVR_CONFIG)"
    return Finding("settings", Status.OK, f"loaded from {where}")


def render(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    return "\n".join(f"{f.status.value:<4} {f.check:<{width}}  {f.detail}" for f in findings)


def failed(findings: list[Finding]) -> bool:
    return any(f.status is Status.FAIL for f in findings)


# --- the database ----------------------------------------------------------------------------------


async def check_database(settings: Settings, timeout_s: float) -> Finding:
    from alembic.script import ScriptDirectory
    from sqlalchemy import func, select
    from sqlalchemy.engine import make_url

    from ivr.store.db import Store, StoreUnavailable
    from ivr.store.migrate import alembic_config, current_revision
    from ivr.store.models import Customer

    url = make_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(url.database):
        return Finding("database", Status.FAIL, f"no database file at {url.database}: run `ivr db upgrade`")
    store = Store(settings.database_url, busy_timeout_s=min(settings.store.busy_timeout_s, timeout_s))
    try:
        revision = await current_revision(store)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        if revision != head:
            detail = f"{shown}: schema at {revision or 'nothing'}, code expects {head}: run `ivr db upgrade`"
            return Finding("database", Status.FAIL, detail)
        customers = await store.read(lambda s: s.execute(select(func.count()).select_from(Customer)).scalar_one())
    except StoreUnavailable as exc:
        return Finding("database", Status.FAIL, f"{shown}: {exc} (is the database server up? check IVR_DATABASE_URL)")
    finally:
        await store.aclose()
    if customers == 0 and settings.backend == "builtin":
        detail = f"{shown}: schema at head ({head}) but no customer accounts: the built-in back-end identifies nobody"
        return Finding("database", Status.WARN, detail + " (`ivr db seed` loads the demo accounts)")
    return Finding("database", Status.OK, f"{shown}: schema at head ({head}), {customers} customer account(s)")


# --- Asterisk --------------------------------------------------------------------------------------


async def check_ami(settings: Settings, timeout_s: float) -> Finding:
    from pydantic import SecretStr

    from ivr.ami.client import AmiClient, AmiError, AmiLoginError, AmiNotConnected
    from ivr.asterisk.root import ami_secret

    conf = settings.ami
    where = f"{conf.host}:{conf.port}"
    # The secret `ivr asterisk up` wrote into manager.conf: the configured one or this machine's own.
    client = AmiClient(
        conf.model_copy(update={"secret": SecretStr(ami_secret(settings)), "action_timeout_s": timeout_s * 0.8})
    )
    try:
        await client.connect()
        await client.ping()
        status = await client.action({"Action": "CoreStatus"})
    except AmiLoginError as exc:
        return Finding("ami", Status.FAIL, f"{where}: {exc}; the secret must match Asterisk's manager.conf")
    except AmiNotConnected:
        return Finding("ami", Status.FAIL, f"no AMI login at {where}: is Asterisk running? (`ivr asterisk up`)")
    except AmiError as exc:
        return Finding("ami", Status.FAIL, f"{where}: logged in, but {exc} (Asterisk busy or hung?)")
    finally:
        await client.close()
    first = status[0] if isinstance(status, list) else status
    calls = first.get("CoreCurrentCalls", "?")
    return Finding("ami", Status.OK, f"logged in at {where} as {conf.username!r}; {calls} call(s) in progress")


async def check_fastagi(settings: Settings, timeout_s: float) -> Finding:
    where = f"{settings.agi.host}:{settings.agi.port}"
    try:
        _, writer = await asyncio.open_connection(settings.agi.host, settings.agi.port)
    except OSError as exc:
        return Finding("fastagi", Status.FAIL, f"nothing listens on {where} ({exc.strerror or exc}): start `ivr serve`")
    writer.close()
    await writer.wait_closed()
    return Finding("fastagi", Status.OK, f"`ivr serve` listens on {where}")


# --- back-ends ------------------------------------------------------------------------------------


async def check_carrier_api(settings: Settings, timeout_s: float) -> Finding:
    if settings.backend != "http":
        return Finding("carrier_api", Status.OK, "not used (backend: builtin answers from the database)")
    from integrations.carrier.client import BadResponse, CarrierClient, CarrierRefused, CarrierUnavailable

    conf = settings.carrier_api
    # One plain attempt: the doctor wants the back-end's own answer, not the retries' and cache's.
    single = {"read_retries": 0, "cache_ttl_s": 0, "attempt_timeout_s": timeout_s}
    client = CarrierClient(conf.model_copy(update=single))
    try:
        # A search by an unknown customer code: the cheapest request the contract answers with a list.
        await client.read("/customers", "CustomerList", {"code": "0"})
    except CarrierRefused as exc:
        hint = "check IVR_CARRIER_API__TOKEN" if exc.status in (401, 403) else "check carrier_api.base_url"
        return Finding("carrier_api", Status.FAIL, f"{exc} ({hint})")
    except CarrierUnavailable as exc:
        return Finding("carrier_api", Status.FAIL, f"{exc} (is {conf.base_url} up and reachable?)")
    except BadResponse as exc:
        return Finding("carrier_api", Status.FAIL, f"{exc}: {conf.base_url} does not speak carrier_api.openapi.yaml")
    finally:
        await client.aclose()
    return Finding("carrier_api", Status.OK, f"{conf.base_url} answers GET /customers as the contract says")


async def check_smtp(settings: Settings, timeout_s: float) -> Finding:
    conf = settings.email
    if not conf.host:
        return Finding("smtp", Status.WARN, "not configured: e-mails wait in the outbox (set IVR_EMAIL__HOST)")
    import aiosmtplib

    from ivr import email_address

    where = f"{conf.host}:{conf.port}"
    smtp = aiosmtplib.SMTP(
        hostname=conf.host,
        port=conf.port,
        use_tls=conf.security == "tls",
        start_tls=conf.security == "starttls",
        validate_certs=conf.validate_certs,
        cert_bundle=str(conf.ca_file) if conf.ca_file else None,
        timeout=timeout_s,
    )
    steps = {"starttls": ["EHLO", "STARTTLS"], "tls": ["TLS", "EHLO"], "none": ["EHLO"]}[conf.security]
    try:
        await smtp.connect()  # greeting, EHLO and, with starttls, STARTTLS and EHLO again
        if conf.username:
            await smtp.login(conf.username, conf.password.get_secret_value())
            steps.append(f"login as {email_address.mask(conf.username)}")
        await smtp.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        refused = f"{where}: login refused ({exc.code} {exc.message})"
        return Finding("smtp", Status.FAIL, f"{refused}: check IVR_EMAIL__USERNAME / IVR_EMAIL__PASSWORD")
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Finding("smtp", Status.FAIL, f"{where}: {exc} (check email.host, email.port and email.security)")
    finally:
        smtp.close()
    return Finding("smtp", Status.OK, f"{where}: " + ", ".join(steps) + " accepted")


async def check_whatsapp(settings: Settings, timeout_s: float) -> Finding:
    conf = settings.whatsapp
    if not conf.configured:
        return Finding("whatsapp", Status.WARN, "not configured: WhatsApp messages wait in the outbox "
                       "(set IVR_WHATSAPP__PHONE_NUMBER_ID and IVR_WHATSAPP__TOKEN)")  # fmt: skip
    import aiohttp

    # The business number's own record: reachable, the token valid, and the number id ours.
    url = f"{conf.base_url}/{conf.api_version}/{conf.phone_number_id}"
    headers = {"Authorization": f"Bearer {conf.token.get_secret_value()}"}
    fields = {"fields": "display_phone_number,verified_name"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s * 0.8)) as session:
            async with session.get(url, params=fields, headers=headers) as answer:
                status = answer.status
                number = await answer.json(content_type=None) if status == 200 else {}
    except (aiohttp.ClientError, ValueError) as exc:
        detail = f"{conf.base_url}: {type(exc).__name__}: {exc} (check whatsapp.base_url)"
        return Finding("whatsapp", Status.FAIL, detail)
    if status in (401, 403):
        detail = f"{conf.base_url}: token refused (HTTP {status}): renew IVR_WHATSAPP__TOKEN"
        return Finding("whatsapp", Status.FAIL, detail)
    if status != 200 or not isinstance(number, dict):
        return Finding("whatsapp", Status.FAIL, f"GET /{conf.api_version}/<phone number id> answered HTTP {status}: "
                       "check whatsapp.phone_number_id and whatsapp.api_version")  # fmt: skip
    shown = f"{number.get('display_phone_number', '?')} ({number.get('verified_name', '?')})"
    return Finding("whatsapp", Status.OK, f"{conf.base_url}: business number {shown}")


async def check_screen_pop(settings: Settings, timeout_s: float) -> Finding:
    conf = settings.screen_pop
    if not conf.url:
        return Finding("screen_pop", Status.OK, "off (screen_pop.url unset): agents see the call in channel variables")
    from integrations.messaging.outbox import DeliveryError
    from integrations.messaging.screen_pop import ScreenPopSender
    from ivr.clock import system_clock

    short = {"timeout_s": min(conf.timeout_s, timeout_s), "connect_timeout_s": min(conf.connect_timeout_s, timeout_s)}
    try:
        await ScreenPopSender(conf.model_copy(update=short), clock=system_clock).ping()
    except DeliveryError as exc:
        # A refusal (4xx) is the receiver's answer to our signature; anything else, no answer at all.
        hint = "refused: check IVR_SCREEN_POP__SECRET and both clocks" if exc.permanent else (
            "is the agents' desktop service up and reachable? check screen_pop.url"
        )
        return Finding("screen_pop", Status.FAIL, f"{exc} ({hint})")
    return Finding("screen_pop", Status.OK, f"{conf.url} accepts a signed ping")


async def check_speech(settings: Settings, timeout_s: float) -> Finding:
    conf = settings.speech
    if conf.endpoint is None:
        return Finding("speech", Status.OK, "not configured: menus take keys only (IVR_SPEECH__ENDPOINT)")
    import grpc

    if conf.insecure:
        channel = grpc.aio.insecure_channel(conf.endpoint)
    else:
        import google.auth
        import google.auth.exceptions

        try:
            await asyncio.to_thread(google.auth.default)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            return Finding("speech", Status.FAIL, f"no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS ({exc})")
        channel = grpc.aio.secure_channel(conf.endpoint, grpc.ssl_channel_credentials())
    try:
        async with asyncio.timeout(timeout_s * 0.8):
            await channel.channel_ready()
    except TimeoutError:
        return Finding("speech", Status.FAIL, f"gRPC channel to {conf.endpoint} not ready within {timeout_s * 0.8:g} s "
                       "(unreachable, or not gRPC/TLS as speech.insecure says)")  # fmt: skip
    finally:
        await channel.close()
    return Finding("speech", Status.OK, f"gRPC channel to {conf.endpoint} ready")


# --- what `ivr serve` reads from disk ---------------------------------------------------------------


async def check_prompts(settings: Settings, timeout_s: float) -> Finding:
    return await asyncio.to_thread(_prompts, settings)


def _prompts(settings: Settings) -> Finding:
    from ivr.voice.build import AUDIO_SUBDIR, BuildError, audio_path, out_of_date
    from ivr.voice.catalogue import Catalogue, CatalogueError

    try:
        catalogue = Catalogue.load(settings.prompts_dir)
        voice = settings.voice
        stale = out_of_date(
            catalogue, settings.prompts_dir, voice=voice.espeak_voice, words_per_minute=voice.words_per_minute
        )
    except CatalogueError as exc:
        return Finding("prompts", Status.FAIL, f"prompt catalogue: {exc.problems[0]} ({len(exc.problems)} problem(s))")
    except BuildError as exc:
        return Finding("prompts", Status.FAIL, str(exc))
    audio_dir = settings.prompts_dir / AUDIO_SUBDIR
    missing = [pid for pid in stale if not audio_path(audio_dir, pid, "alaw").is_file()]
    total = len(catalogue.ids())
    if missing:
        return Finding("prompts", Status.FAIL, f"{len(missing)} of {total} prompts have no audio (e.g. {missing[0]}): "
                       "callers would hear silence; run `ivr prompts build`")  # fmt: skip
    if stale:
        return Finding("prompts", Status.WARN, f"{len(stale)} of {total} prompts changed since their audio was built "
                       f"(e.g. {stale[0]}): run `ivr prompts build`")  # fmt: skip
    return Finding("prompts", Status.OK, f"all {total} prompts built and up to date in {audio_dir}")


async def check_flows(settings: Settings, timeout_s: float) -> Finding:
    return await asyncio.to_thread(_flows, settings)


def _flows(settings: Settings) -> Finding:
    from integrations.catalog import declared_registry
    from ivr.clock import system_clock
    from ivr.flows.checks import check_paths, flow_files
    from ivr.flows.library import FlowLibrary, version_of
    from ivr.voice.catalogue import Catalogue, CatalogueError

    try:
        catalogue = Catalogue.load(settings.prompts_dir)
    except CatalogueError as exc:
        return Finding("flows", Status.FAIL, f"cannot check flows: prompt catalogue: {exc.problems[0]}")
    pace = settings.voice.words_per_minute
    registry = declared_registry()
    published = settings.var_dir / "published"
    library = FlowLibrary(published, catalogue=catalogue, registry=registry, clock=system_clock, words_per_minute=pace)
    version = library.published_version()
    files = flow_files([settings.flows_dir])
    local = version_of(files) if files else None
    if version is None:
        report = check_paths([settings.flows_dir], catalogue=catalogue, registry=registry, words_per_minute=pace)
        if not files or not report.ok:
            first = report.errors[0] if report.errors else f"no flow files in {settings.flows_dir}"
            detail = f"nothing published, and {settings.flows_dir} fails its checks: {first}"
            return Finding("flows", Status.FAIL, detail)
        return Finding("flows", Status.WARN, f"nothing published yet; {settings.flows_dir} passes its checks "
                       "(`ivr flow publish`, or `ivr serve` publishes it on its first start)")  # fmt: skip
    report = library.reload()
    if not report.ok:
        return Finding("flows", Status.FAIL, f"published version {version} fails its checks ({report.summary()}): "
                       f"{report.errors[0]}; fix the flows and `ivr flow publish`")  # fmt: skip
    if local != version:
        return Finding("flows", Status.WARN, f"version {version} published and passing its checks; "
                       f"{settings.flows_dir} has changes not published (`ivr flow publish`)")  # fmt: skip
    return Finding("flows", Status.OK, f"version {version} published ({len(report.flows)} flows), passing its checks")


async def check_recordings(settings: Settings, timeout_s: float) -> Finding:
    return await asyncio.to_thread(_recordings, settings)


def _recordings(settings: Settings) -> Finding:
    """What the recordings kept for the teams take on disk, and whether any outlived the retention (no
    `ivr serve` has been deleting them)."""
    from datetime import timedelta

    from ivr.agi.recording import recordings_kept
    from ivr.clock import system_clock

    directory = settings.recordings_path
    if not directory.is_dir():
        return Finding("recordings", Status.WARN, f"{directory} does not exist: run `ivr asterisk provision`")
    kept, retention_days = recordings_kept(directory), settings.asterisk.recordings_retention_days
    held = f"{kept.files} recording(s), {kept.size / 2**20:.1f} MiB in {directory}"
    retention = f"kept up to {retention_days:g} days"
    if kept.oldest is None:
        return Finding("recordings", Status.OK, f"no recordings kept in {directory} ({retention})")
    age_days = (system_clock() - kept.oldest) / timedelta(days=1)
    if age_days > retention_days + 1:  # the sweep runs hourly in `ivr serve`
        return Finding("recordings", Status.WARN, f"{held}, the oldest {age_days:.0f} days old, past the "
                       f"{retention_days:g}-day retention: is `ivr serve` running? it deletes them")  # fmt: skip
    return Finding("recordings", Status.OK, f"{held}, the oldest {age_days:.1f} days old ({retention})")
