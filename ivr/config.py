"""One typed settings object, loaded once, failing fast.

Values come from, highest first: environment variables (``IVR_`` prefix, ``__`` for nesting,
e.g. ``IVR_AMI__SECRET``), then the YAML file named by ``IVR_CONFIG`` (kept outside the repo for
secrets), then the defaults below. Defaults are the carrier's service page values and loopback-only
addresses on ports that cannot collide with a system SIP/AMI/AGI service.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ivr.text import has_control

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file or variable and what was expected."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only hosts a credential may travel to in plaintext (local fakes), or
    unauthenticated metrics be served on without saying so."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


def _refuse_plaintext(setting: str, host: str, credential: str) -> None:
    """A credential in plaintext to a host other than loopback is readable on the way: refused at load."""
    if not is_loopback(host):
        raise ValueError(
            f"{setting} sends {credential} in plaintext to {host or '(no host)'}: use TLS, or a loopback host "
            "(127.0.0.1, ::1, localhost) for a local test server"
        )


class _Section(BaseModel):
    """A settings section: an unknown key (a typo such as ``ami: {prot: 5039}``) is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class AgiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 4574
    # Bound on the commands Asterisk answers at once (ANSWER, SET/GET VARIABLE, HANGUP). The others are
    # bounded by what they do (ivr/agi/bounds.py): a prompt's built length, a key wait, a recording's
    # longest length, a queue or transfer by the call's own limit; each plus margin_s.
    command_timeout_s: float = 30.0
    margin_s: float = 5.0
    drain_timeout_s: float = 60.0
    header_timeout_s: float = 5.0  # a peer must send its whole agi_* block within this
    # STREAM FILE <sound_prefix>/<prompt id>, under Asterisk's sounds dir; no "&" or ",": several prompts
    # play as one Background(a&b&c,...)
    sound_prefix: str = Field(default="sac/pt_BR", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
    # Who may start a call (ivr/agi/admission.py): the key the shipped dialplan puts in the AGI URL (empty:
    # one generated per install, as for AMI), the addresses Asterisk connects from, the flows a call may
    # start in (a subflow such as identify is not one), and how many connections may be waiting to send
    # their agi_* block at once (the rest are closed: a flood of idle sockets cannot starve the calls).
    secret: SecretStr = SecretStr("")
    asterisk_hosts: list[str] = ["127.0.0.1", "::1"]
    entry_flows: list[str] = ["sac"]
    max_unidentified: int = Field(default=4096, ge=1)  # a burst of calls connects faster than headers are read

    @field_validator("asterisk_hosts")
    @classmethod
    def _addresses(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"expected IP addresses (Asterisk's, as it connects), got {host!r}") from None
        return hosts

    @field_validator("secret")
    @classmethod
    def _url_safe(cls, secret: SecretStr) -> SecretStr:
        value = secret.get_secret_value()
        if value and not re.fullmatch(r"[A-Za-z0-9_-]{16,}", value):
            raise ValueError("expected 16 or more letters, digits, '-' or '_' (it travels in the AGI URL)")
        return secret


class AmiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 5039
    username: str = "sac-ivr"
    secret: SecretStr = SecretStr("")
    action_timeout_s: float = 5.0
    ping_interval_s: float = 10.0

    @model_validator(mode="after")
    def _loopback(self) -> AmiSettings:
        # AMI has no TLS here, and a login always carries the secret (generated when not given).
        _refuse_plaintext("ami.host", self.host, "the AMI secret")
        # The login is sent by panoramisk, past the client's header check: a line break would add headers.
        for name, value in (("ami.username", self.username), ("ami.secret", self.secret.get_secret_value())):
            if has_control(value):
                raise ValueError(f"{name} holds a line break or another control character")
        return self


class AgentPhone(_Section):
    """An agent's SIP phone: Asterisk calls it at address:port when the queue gives it a call, and tells
    it from callers by its address (no two phones, nor the SBC or the test callers, share one)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")  # its queue interface is PJSIP/agent-<name>
    address: str
    port: int = Field(default=5060, ge=1, le=65535)


class SipSettings(_Section):
    """Where the shipped Asterisk listens for SIP (loopback; the carrier trunk comes from an SBC)."""

    host: str = "127.0.0.1"
    port: int = 5160
    rtp_start: int = 31000
    rtp_end: int = 31999
    # The carrier's SBC and the local test callers are told apart by source address (first match wins
    # in PJSIP, so the two must not overlap): the simulated SBC uses a second loopback address.
    sbc_address: str = "127.0.0.2"
    sbc_port: int = 5060
    tester_address: str = "127.0.0.1"
    # How the carrier trunk takes a number we dial: "national" (area code + number, 3131958012) or
    # "e164" (+553131958012). Settings and flows keep E.164; ivr.phone.for_trunk converts at the edge.
    trunk_number_format: Literal["national", "e164"] = "national"
    # The agents' phones the queues ring (logged in to a queue over AMI as PJSIP/agent-<name>).
    agents: list[AgentPhone] = []


class AsteriskSettings(_Section):
    # Root of the Debian-unstable tree Asterisk runs in; None means the per-user cache.
    root: Path | None = None
    sounds_subdir: str = "sac"
    recordings_subdir: str = "sac-recordings"
    # Debian suite with Asterisk 22 and the mirror to build the root from (None: the machine's apt sources).
    suite: str = "sid"
    mirror: str | None = None
    # Hard bound on any call's length (TIMEOUT(absolute)), so no channel can wait forever.
    max_call_s: int = 3600
    # Where a call goes when the IVR fails (the 24x7 queue), and how long it may wait there.
    fallback_queue: str = "technical"
    queue_wait_s: int = 900
    # Channel variables shown to agents in AMI events (AgentCalled); set by the IVR before queueing.
    # (the engine's queue context, as ivr/agi sets it: IVR_ + the key in upper case; IVR_KEYED the
    # caller's answers, masked where personal; IVR_CIRCUIT when a flow's queue node gives it in its
    # `context`, as flows/sac.yaml does for the circuit chosen). The screen pop reads them too.
    agent_channel_vars: tuple[str, ...] = (
        "IVR_PROTOCOL", "IVR_CALLER_ID", "IVR_CUSTOMER", "IVR_CUSTOMER_NAME", "IVR_PATH", "IVR_TICKETS",
        "IVR_CIRCUIT", "IVR_KEYED",
    )  # fmt: skip
    # RECORD FILE's directory as Asterisk names it (inside its chroot), and the same directory as the
    # IVR reads it; None = the first one under the Asterisk root.
    recordings_dir_in_asterisk: str = "/var/spool/asterisk/sac-recordings"
    recordings_dir: Path | None = None
    # A recording a flow keeps for the team (record: keep) is personal data: deleted after this many days.
    recordings_retention_days: float = Field(default=30, gt=0)


class StoreSettings(_Section):
    """The store's timings and bounds (see ivr/store)."""

    busy_timeout_s: float = 5.0  # SQLite: how long a writer waits for the write lock
    allocate_timeout_s: float = 1.5  # past this, a call takes a protocol from the local fallback range
    event_batch_size: int = 1000  # records per transaction (a burst queues many writers: take few turns)
    event_flush_interval_s: float = 1.0
    event_buffer_max: int = 20_000  # records waiting for the store; beyond this new ones are dropped
    event_retry_max_s: float = 5.0  # longest pause between write attempts while the store is down


class VoiceSettings(_Section):
    """How prompt audio is synthesised (ivr prompts build)."""

    espeak_voice: str = "pt-br"  # espeak-ng's Brazilian Portuguese voice
    words_per_minute: int = 150  # a little slower than espeak's 175: callers write numbers down
    build_workers: int = 2


class SpeechSettings(_Section):
    """The speech back-end (Google Cloud Speech-to-Text v1). Without an endpoint the IVR listens to no
    one: spoken answers count as not understood and every menu falls back to its keys."""

    endpoint: str | None = None  # host:port, e.g. speech.googleapis.com:443
    # Plaintext gRPC, for a local fake only; production uses TLS with the credentials of
    # GOOGLE_APPLICATION_CREDENTIALS.
    insecure: bool = False
    timeout_s: float = Field(default=4.0, gt=0, le=30)  # the caller is waiting in silence meanwhile
    # Below this confidence a spoken menu choice is not acted on: the caller is asked to use the keys.
    min_confidence: float = Field(default=0.6, ge=0, le=1)
    language_code: str = "pt-BR"
    model: str = "telephony"

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected host:port (e.g. speech.googleapis.com:443), got {endpoint!r}")
        return endpoint

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> SpeechSettings:
        if self.insecure and self.endpoint:
            _refuse_plaintext("speech.insecure", self.endpoint.rpartition(":")[0], "the callers' recorded speech")
        return self


class ServicePage(_Section):
    """Numbers, mailboxes and deadlines from the carrier's service page (shared/SEED.md). Numbers are
    E.164; the trunk's form is made at the edge (`ivr.phone.for_trunk`)."""

    sac_number: str = "+553130033336"
    negotiation_number: str = "+553131958012"
    attendance_email: str = "atendimento.fibra@americantower.com"
    scheduled_activity_email: str = "sir.fibra@americantower.com"
    bgp_email: str = "bgp.fibra@americantower.com"
    receivables_email: str = "br.contas.receber.fibra@americantower.com"
    billing_adjustment_days: int = 10  # calendar days
    dispute_answer_days: int = 10  # calendar days
    document_copy_business_days: int = 3

    @field_validator("sac_number", "negotiation_number")
    @classmethod
    def _e164(cls, number: str) -> str:
        if not re.fullmatch(r"\+55\d{10,11}", number):
            raise ValueError(f"expected a Brazilian number in E.164 form (+55 area code number), got {number!r}")
        return number


class Deadline(_Section):
    days: int = Field(ge=1, le=365)
    business: bool = True  # business days (weekends and national holidays skipped), else calendar days


class DeadlineSettings(_Section):
    """Answer deadlines said to callers and written in the call's summary, per kind of request. Billing
    adjustments, disputes and copies take the service page's (`page`); complaints and cancellation the
    regulation's (Anatel RGC). Any other kind has the deadline the operator sets here; a kind left unset
    gets none, and nothing is promised for it."""

    complaint: Deadline | None = Deadline(days=5)  # RGC: a complaint is answered within 5 business days
    cancellation: Deadline | None = Deadline(days=2)  # RGC: a cancellation takes effect within 2 business days
    technical_failure: Deadline | None = None
    service_request: Deadline | None = None
    due_date_change: Deadline | None = None
    maintenance_reschedule: Deadline | None = None
    bgp_request: Deadline | None = None
    callback_request: Deadline | None = None


class BillingSettings(_Section):
    """What the billing journeys offer that the service page leaves to the contract."""

    # The days of the month an invoice can fall due (J17): set to what the carrier's contracts offer.
    due_days: tuple[int, ...] = (5, 10, 15, 20, 25)

    @field_validator("due_days")
    @classmethod
    def _days_of_month(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if not days or any(not 1 <= day <= 28 for day in days):
            raise ValueError(f"expected days of the month from 1 to 28 (every month has them), got {list(days)}")
        return tuple(sorted(set(days)))


class EmailSettings(_Section):
    """The SMTP server e-mails leave through (integrations/messaging/email.py). The password comes from the
    environment (IVR_EMAIL__PASSWORD) or the IVR_CONFIG file, never from the repo."""

    host: str = ""  # "" = not configured: messages wait in the outbox until it is
    port: int = 587
    username: str = ""  # "" = no AUTH
    password: SecretStr = SecretStr("")
    security: Literal["starttls", "tls", "none"] = "starttls"  # tls = implicit TLS (port 465)
    validate_certs: bool = True
    ca_file: Path | None = None  # a private CA bundle for the server's certificate (else the system's)
    from_address: str = "atendimento.fibra@americantower.com"
    from_name: str = "American Tower Fibra"
    timeout_s: float = 30.0  # per SMTP command

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> EmailSettings:
        if self.security == "none" and self.password.get_secret_value():
            _refuse_plaintext("email.security (none)", self.host, "the SMTP password (IVR_EMAIL__PASSWORD)")
        return self


class WhatsAppSettings(_Section):
    """The WhatsApp Business Cloud API (integrations/messaging/whatsapp.py): template messages sent from the SAC's
    business number. The access token comes from the environment (IVR_WHATSAPP__TOKEN) or the IVR_CONFIG
    file, never from the repo. The templates are approved in WhatsApp Manager with the body parameters
    listed in integrations/messaging/whatsapp_operations.py."""

    base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    phone_number_id: str = ""  # the business number's id; "" = not configured: messages wait in the outbox
    token: SecretStr = SecretStr("")  # sent as "Authorization: Bearer <token>"
    language: str = "pt_BR"  # the templates' language code
    protocol_template: str = "sac_protocolo"
    digitable_line_template: str = "sac_linha_digitavel"
    summary_template: str = "sac_resumo"
    timeout_s: float = Field(default=15.0, gt=0, le=60)  # one request (the outbox bounds the whole send too)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
            raise ValueError(f"expected an http:// or https:// URL without query (https://host), got {url!r}")
        return url.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, version: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", version):
            raise ValueError(f"expected a Graph API version like v21.0, got {version!r}")
        return version

    @field_validator("phone_number_id")
    @classmethod
    def _number_id(cls, number_id: str) -> str:
        if number_id and not number_id.isdigit():
            raise ValueError(f"expected the numeric phone number id from WhatsApp Manager, got {number_id!r}")
        return number_id

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> WhatsAppSettings:
        if self.base_url.startswith("http://") and self.token.get_secret_value():
            _refuse_plaintext("whatsapp.base_url (http://)", urlsplit(self.base_url).hostname or "", "the access token")
        return self

    @property
    def configured(self) -> bool:
        return bool(self.phone_number_id and self.token.get_secret_value())


class ScreenPopSettings(_Section):
    """The screen pop (integrations/messaging/screen_pop.py): when an agent answers a call from the IVR, the
    call's context is POSTed as JSON to `url`, signed with `secret` (HMAC-SHA256), through the outbox. The
    secret comes from the environment (IVR_SCREEN_POP__SECRET) or the IVR_CONFIG file, never from the repo."""

    url: str = ""  # "" = off: no pop is queued
    secret: SecretStr = SecretStr("")
    # A pop not delivered within this is given up: the agent has been talking for a while by then.
    max_age_s: float = Field(default=120.0, gt=0, le=3600)
    timeout_s: float = Field(default=5.0, gt=0, le=60)  # one request (the outbox bounds the whole send too)
    connect_timeout_s: float = Field(default=2.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL (or empty: off), got {url!r}")
        return url

    @model_validator(mode="after")
    def _signed(self) -> ScreenPopSettings:
        if self.url and len(self.secret.get_secret_value()) < 16:
            raise ValueError("screen_pop.url is set: give a secret of at least 16 characters (IVR_SCREEN_POP__SECRET)")
        return self


class OutboxSettings(_Section):
    """How the outbox drainer sends (integrations/messaging/outbox.py)."""

    concurrency: int = Field(default=4, ge=1)  # messages in flight per process
    poll_interval_s: float = Field(default=5.0, gt=0)  # looks for rows other processes wrote
    retry_first_s: float = Field(default=30.0, gt=0)  # pause after a first failure, doubled each time
    retry_max_s: float = Field(default=1800.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)  # then the message is `failed`, for an operator
    lease_s: float = Field(default=300.0, gt=0)  # a claimed row is re-claimed only after this
    send_timeout_s: float = Field(default=120.0, gt=0)  # one whole delivery; must be under lease_s
    shutdown_timeout_s: float = Field(default=10.0, gt=0)  # in-flight deliveries finish within this

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> OutboxSettings:
        if self.send_timeout_s >= self.lease_s:
            raise ValueError(
                f"send_timeout_s ({self.send_timeout_s}) must be below lease_s ({self.lease_s}): "
                "a slow send would be claimed again and sent twice"
            )
        return self


class CarrierApiSettings(_Section):
    """The carrier's systems over HTTP (integrations/carrier/backend.py; the contract is
    integrations/carrier/carrier_api.openapi.yaml). The token comes from the environment
    (IVR_CARRIER_API__TOKEN) or the IVR_CONFIG file, never from the repo."""

    base_url: str = "http://127.0.0.1:8480/v1"  # loopback default; the real address comes from IVR_CONFIG
    token: SecretStr = SecretStr("")  # sent as "Authorization: Bearer <token>"; "" = no header
    # A lookup never keeps the caller waiting longer than this, retries included.
    read_deadline_s: float = Field(default=2.5, gt=0, le=30)
    write_deadline_s: float = Field(default=4.0, gt=0, le=30)  # opening a ticket, registering a lead
    attempt_timeout_s: float = Field(default=1.0, gt=0, le=30)  # one request, so a slow one can be retried
    connect_timeout_s: float = Field(default=0.5, gt=0, le=30)
    read_retries: int = Field(default=2, ge=0, le=5)  # extra attempts for reads; writes are never retried
    backoff_first_s: float = Field(default=0.1, gt=0)  # doubled per retry, with full jitter
    backoff_max_s: float = Field(default=0.8, gt=0)
    breaker_failures: int = Field(default=5, ge=1)  # consecutive failed requests that open the breaker
    breaker_reset_s: float = Field(default=10.0, gt=0)  # then one probe request is let through
    cache_ttl_s: float = Field(default=60.0, ge=0)  # customer and circuit reads; 0 = no cache
    cache_entries: int = Field(default=2000, ge=1)
    max_response_bytes: int = Field(default=1_000_000, ge=1024)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
            raise ValueError(f"expected an http:// or https:// base URL without query (https://host/v1), got {url!r}")
        return url

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> CarrierApiSettings:
        if self.base_url.startswith("http://") and self.token.get_secret_value():
            _refuse_plaintext("carrier_api.base_url (http://)", urlsplit(self.base_url).hostname or "", "the API token")
        return self


class HoldSettings(_Section):
    """What a caller hears while an operation is slow (ivr/engine/gateway.py)."""

    prompt: str = "one_moment"  # played once, if the operation takes longer than after_s
    after_s: float = Field(default=1.0, gt=0)


class CallbackSettings(_Section):
    """The call back dialer inside ``ivr serve`` (ivr/dialer.py): it dials a due call back when the team's
    queue has an agent free, inside the team's hours."""

    enabled: bool = True
    max_attempts: int = Field(default=3, ge=1, le=10)  # then the call back is given up (and stays listed)
    spacing_s: float = Field(default=600.0, gt=0)  # between one attempt's end and the next
    ring_s: float = Field(default=40.0, gt=0, le=120)  # how long the customer's phone rings
    # A claimed row no unit finished within this is reconciled by another (its dialler died).
    lease_s: float = Field(default=300.0, gt=0)
    poll_interval_s: float = Field(default=15.0, gt=0)  # looks at the queues and the rows due this often
    # When each team takes calls (weekday spans as in the flows' `hours`); a team not listed is 24x7
    # (technical support, Decreto 11.034 Art. 4).
    hours: dict[str, dict[str, str]] = {
        "billing": {"weekdays": "08:00-18:00"},
        "commercial": {"weekdays": "08:00-18:00"},
    }

    @field_validator("hours")
    @classmethod
    def _weekday_spans(cls, hours: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        days = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", "weekdays", "every_day"}
        span = r"\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}"
        for team, schedule in hours.items():
            for day, spans in schedule.items():
                if day not in days or not re.fullmatch(rf"closed|{span}(\s*,\s*{span})*", spans.strip()):
                    raise ValueError(
                        f"{team}.{day}: expected a weekday (mon..sun, weekdays, every_day) and spans like "
                        f"08:00-18:00 (or closed), got {day}: {spans!r}"
                    )
        return hours

    @model_validator(mode="after")
    def _lease_outlives_a_ring(self) -> CallbackSettings:
        if self.lease_s <= self.ring_s * 2:
            raise ValueError(
                f"lease_s ({self.lease_s}) must exceed twice ring_s ({self.ring_s}): a call still ringing "
                "would be reconciled by another unit"
            )
        return self


class QueueWaitSettings(_Section):
    """What a caller hears before joining a queue (ivr/engine/verbs/queue.py)."""

    # An estimated wait above this offers a call back before the caller joins (the key works while waiting too).
    offer_callback_over_s: float = Field(default=600.0, gt=0)
    # The queue's live state is asked over AMI for at most this long; then the caller joins, told nothing.
    state_timeout_s: float = Field(default=1.0, gt=0, le=5)
    # How long the caller has to press the call-back key after the offer, before joining the queue.
    offer_key_wait_s: float = Field(default=4.0, gt=0, le=15)


class WebSettings(_Section):
    """The supervisors' web console (`ivr web`): loopback unless the operator puts it behind a proxy."""

    host: str = "127.0.0.1"
    port: int = Field(default=8089, ge=1, le=65535)
    session_lifetime_s: int = Field(default=8 * 3600, gt=0)  # a shift; then log in again
    # Secure cookies travel only over HTTPS: set it once the console is served through TLS.
    cookie_secure: bool = False
    # Failed logins for one account from one address within the window; past it, refused (429) until the
    # oldest failure leaves the window.
    login_failures_max: int = Field(default=5, gt=0)
    login_window_s: int = Field(default=15 * 60, gt=0)
    live_poll_s: float = Field(default=1.0, gt=0, le=10)  # how often the live page re-reads announcements, session


class LogSettings(_Section):
    """How the long-running commands (`ivr serve`, `ivr web`) log, on stderr (ivr/logs.py)."""

    format: Literal["text", "json"] = "text"  # json: one object per line, what a log shipper reads
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # `ivr -v` still means DEBUG


class MetricsSettings(_Section):
    """`ivr serve`'s Prometheus metrics (ivr/metrics.py), at http://host:port/metrics. Loopback unless
    `allow_remote`: the scrape has no authentication, so a wider address is an explicit choice."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)  # 0: any free port (tests)
    allow_remote: bool = False  # serve on a non-loopback host (behind a firewall or a scraping proxy)

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> MetricsSettings:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address: the metrics have no authentication; "
                "set metrics.allow_remote: true to serve them there anyway"
            )
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IVR_", env_nested_delimiter="__", extra="forbid")

    database_url: str = f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'ivr.sqlite3'}"
    flows_dir: Path = REPO_ROOT / "flows"
    prompts_dir: Path = REPO_ROOT / "prompts" / "pt_BR"
    var_dir: Path = REPO_ROOT / "var"
    language: str = "pt_BR"
    timezone: str = "America/Sao_Paulo"
    max_call_steps: int = 500
    # Sequence numbers kept for protocols issued while the store is down; each unit (an IVR host
    # sharing the database with others) takes its own tenth, so two units never issue the same number.
    protocol_fallback_range: tuple[int, int] = (9_000_000, 9_999_999)
    unit_id: int = Field(default=0, ge=0, le=9)
    agi: AgiSettings = Field(default_factory=AgiSettings)
    ami: AmiSettings = Field(default_factory=AmiSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    asterisk: AsteriskSettings = Field(default_factory=AsteriskSettings)
    page: ServicePage = Field(default_factory=ServicePage)
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    # Who answers the flows' operations: our own store, or the carrier's systems over HTTP.
    backend: Literal["builtin", "http"] = "builtin"
    carrier_api: CarrierApiSettings = Field(default_factory=CarrierApiSettings)
    hold: HoldSettings = Field(default_factory=HoldSettings)
    speech: SpeechSettings = Field(default_factory=SpeechSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    screen_pop: ScreenPopSettings = Field(default_factory=ScreenPopSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    queue_wait: QueueWaitSettings = Field(default_factory=QueueWaitSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls), file_secret_settings)

    @property
    def unit_fallback_range(self) -> tuple[int, int]:
        """This unit's share of `protocol_fallback_range`."""
        first, last = self.protocol_fallback_range
        share = (last - first + 1) // 10
        start = first + self.unit_id * share
        return start, start + share - 1

    @property
    def asterisk_root(self) -> Path:
        return self.asterisk.root or cache_dir() / "asterisk-root"

    @property
    def recordings_path(self) -> Path:
        """Where the IVR finds the files Asterisk records with RECORD FILE."""
        return self.asterisk.recordings_dir or self.asterisk_root / self.asterisk.recordings_dir_in_asterisk.lstrip("/")


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by IVR_CONFIG, if any."""

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("IVR_CONFIG")
        if not path:
            return {}
        from ruamel.yaml import YAML, YAMLError

        try:
            data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from exc
        except YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level")
        return data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False


def cache_dir() -> Path:
    """Per-user cache kept outside the clone (the Asterisk root is reused across runs)."""
    base = os.environ.get("SAC_IVR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "sac-ivr"
    )
    return Path(base)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            _where(err["loc"], overrides)
            + (": no such setting (a typo?)" if err["type"] == "extra_forbidden" else f": {err['msg']}")
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc


def _where(loc: tuple[int | str, ...], overrides: dict[str, Any]) -> str:
    """Where a bad value came from: the environment variable that set it, else the IVR_CONFIG file
    (the key's dotted path in it), else the caller's overrides."""
    dotted = ".".join(str(part) for part in loc)
    variable = "IVR_" + "__".join(str(part) for part in loc).upper()
    if variable in {name.upper() for name in os.environ}:
        return f"environment variable {variable}"
    if loc and loc[0] in overrides:
        return dotted
    config = os.environ.get("IVR_CONFIG")
    return f"{config}: {dotted}" if config else f"{dotted} (set as {variable})"


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return load_settings()
