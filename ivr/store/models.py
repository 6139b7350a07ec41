"""The store's tables (SQLAlchemy 2 declarative). Alembic migrations in ./migrations must match them.

Accounts: customers (CNPJ, customer code), the contacts registered on them, their circuits, tickets,
invoices with their lines and documents, incidents and planned maintenance per circuit, and leads.
Calls: one row per call (its protocol, the normalised caller number, Asterisk's linkedid), the node
visits of each call, named sequences for the numbers we issue, and protocols issued from the local
fallback range while the store was down. The web console: its accounts, their sessions, failed logins and
the audit log of every change made through it. Announcements: what supervisors post for callers to hear after
the protocol (`ivr announce`). Messages: the outbox of e-mails and WhatsApp messages waiting to
be sent (integrations.messaging.outbox), so a call never waits for a mail server.

Times are stored in UTC (`UtcDateTime`); money as `Numeric(12, 2)` read back as `Decimal`. No column
defaults to the wall clock: the code writing a row stamps it from the clock it was given (`ivr.clock`),
so a call's rows carry the call's time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
)
from sqlalchemy import Enum as SqlEnum
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ivr import email_address, phone
from ivr.domain import (
    AccountStatus,
    ContactKind,
    DocumentKind,
    InvoiceLineKind,
    InvoiceStatus,
    TicketKind,
    TicketState,
)
from ivr.engine.ports import ScopeKind

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; SQLite keeps no zone, so it is put back on reading."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(cls: type[Enum]) -> SqlEnum:
    # Values as plain strings, no CHECK constraint: adding a member needs no migration.
    return SqlEnum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    cnpj: Mapped[str] = mapped_column(String(14), unique=True)  # normalised, digits or letters
    cnpj_root: Mapped[str] = mapped_column(String(8), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # customer code, digits (keyable)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[AccountStatus] = mapped_column(_enum(AccountStatus), default=AccountStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    contacts: Mapped[list[Contact]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    circuits: Mapped[list[Circuit]] = relationship(back_populates="customer", order_by="Circuit.designation")


class Contact(Base):
    """A phone, WhatsApp number or e-mail registered on an account: documents go only to these."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ContactKind] = mapped_column(_enum(ContactKind))
    value: Mapped[str] = mapped_column(String(254))  # phones normalised by ivr.phone; e-mails lower-case
    name: Mapped[str] = mapped_column(String(120), default="")

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class Circuit(Base):
    __tablename__ = "circuits"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    designation: Mapped[str] = mapped_column(String(40), unique=True)
    service: Mapped[str] = mapped_column(String(120), default="")
    address: Mapped[str] = mapped_column(String(250))
    city: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(2))
    status: Mapped[AccountStatus] = mapped_column(_enum(AccountStatus), default=AccountStatus.ACTIVE)

    customer: Mapped[Customer] = relationship(back_populates="circuits")


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(9), unique=True)  # ivr.protocol_number.make_ticket_number
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    circuit_id: Mapped[int | None] = mapped_column(ForeignKey("circuits.id"))
    kind: Mapped[TicketKind] = mapped_column(_enum(TicketKind))
    state: Mapped[TicketState] = mapped_column(_enum(TicketState), default=TicketState.OPEN)
    symptom: Mapped[str] = mapped_column(String(80), default="")
    description: Mapped[str] = mapped_column(String(2000), default="")
    call_protocol: Mapped[str | None] = mapped_column(String(12), index=True)  # the call it was opened on
    callback_number: Mapped[str | None] = mapped_column(String(11))  # a call back's national number to dial
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expected_date: Mapped[date | None] = mapped_column(Date)

    circuit: Mapped[Circuit | None] = relationship()


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_customer_month", "customer_id", "reference_month", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    reference_month: Mapped[date] = mapped_column(Date)  # first day of the month billed
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus))
    paid_on: Mapped[date | None] = mapped_column(Date)

    lines: Mapped[list[InvoiceLine]] = relationship(cascade="all, delete-orphan", order_by="InvoiceLine.id")
    documents: Mapped[list[InvoiceDocument]] = relationship(cascade="all, delete-orphan")


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[InvoiceLineKind] = mapped_column(_enum(InvoiceLineKind))
    description: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))  # negative for discounts and credits
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)


class InvoiceDocument(Base):
    """A boleto (with its digitable line) or a nota fiscal, kept as a file in the store."""

    __tablename__ = "invoice_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[DocumentKind] = mapped_column(_enum(DocumentKind))
    number: Mapped[str] = mapped_column(String(60), default="")  # nota fiscal number
    digitable_line: Mapped[str] = mapped_column(String(60), default="")  # boleto: 47 digits
    file_name: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(80))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Incident(Base):
    """An unplanned outage or degradation affecting a circuit."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"), index=True)
    description: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expected_end_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    circuit: Mapped[Circuit] = relationship()


class MaintenanceWindow(Base):
    """Planned maintenance ("atividade programada") on a circuit."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"), index=True)
    description: Mapped[str] = mapped_column(String(500))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)

    circuit: Mapped[Circuit] = relationship()


class Lead(Base):
    """Someone who is not a customer asking for a quote."""

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(20))
    call_protocol: Mapped[str | None] = mapped_column(String(12), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Call(Base):
    __tablename__ = "calls"
    # `ivr calls list` and `ivr report` read a span of calls by their start.
    __table_args__ = (Index("ix_calls_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol: Mapped[str] = mapped_column(String(12), unique=True)
    caller_id: Mapped[str | None] = mapped_column(String(20), index=True)  # normalised; masked only in logs
    dialled: Mapped[str] = mapped_column(String(40), default="")
    unique_id: Mapped[str] = mapped_column(String(64), default="")
    linked_id: Mapped[str] = mapped_column(String(64), default="", index=True)  # joins Asterisk's CDR
    channel: Mapped[str] = mapped_column(String(120), default="")
    flow: Mapped[str] = mapped_column(String(80), default="")
    flow_version: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str] = mapped_column(String(80), default="")
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    customer_id: Mapped[int | None] = mapped_column()  # the back-end's account id (no FK: may be the carrier's)
    customer_name: Mapped[str] = mapped_column(String(200), default="")


class NodeVisit(Base):
    __tablename__ = "node_visits"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    # No foreign key: visits may reach the store before their call row (outage, fallback protocol).
    call_protocol: Mapped[str] = mapped_column(String(12), index=True)
    flow: Mapped[str] = mapped_column(String(80))
    flow_version: Mapped[str] = mapped_column(String(40))
    node: Mapped[str] = mapped_column(String(80))
    verb: Mapped[str] = mapped_column(String(40))
    input: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    duration_ms: Mapped[int] = mapped_column()
    prompts: Mapped[list[str] | None] = mapped_column(JSON)  # prompt ids played, digits masked; None before 0009


class Sequence(Base):
    """Named counters (``call_protocol:2026``, ``ticket``), bumped atomically (see ivr.store.sequences)."""

    __tablename__ = "sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class FallbackProtocol(Base):
    """A call protocol a unit issued from its local range while the store was down, reconciled later."""

    __tablename__ = "fallback_protocols"

    protocol: Mapped[str] = mapped_column(String(12), primary_key=True)
    unit: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    unique_id: Mapped[str] = mapped_column(String(64), default="")
    reconciled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxChannel(str, Enum):
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    SCREEN_POP = "screen_pop"  # the call's context to the agents' desktop (JSON over HTTP)


def mask_recipient(channel: OutboxChannel, recipient: str) -> str:
    """A message's recipient as operators and logs may see it."""
    if channel is OutboxChannel.SCREEN_POP:
        return recipient  # the agent's interface (PJSIP/agent-101): ours, not the customer's
    return email_address.mask(recipient) if channel is OutboxChannel.EMAIL else phone.mask(recipient)


class OutboxState(str, Enum):
    PENDING = "pending"  # waiting for its next attempt (or being sent, while leased)
    SENT = "sent"
    FAILED = "failed"  # gave up (permanent refusal or attempts exhausted): an operator looks at it


class OutboxMessage(Base):
    """One message to one recipient, written when a call asks for it and sent by the outbox drainer.

    A drainer claims a row by setting `lease_owner`/`lease_until` (and counting the attempt) in a single
    conditional UPDATE; a row whose lease has expired (its drainer died) is claimed again. Attachments are
    `invoice_documents` ids (read when the message is sent), or, for another system's document (the
    carrier API's), the file itself as {file_name, content_type, content_b64} (integrations.messaging.outbox).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[OutboxChannel] = mapped_column(_enum(OutboxChannel))
    recipient: Mapped[str] = mapped_column(String(254))  # an e-mail or phone registered on the account
    template: Mapped[str] = mapped_column(String(80))  # what this message is (call_protocol, boleto...)
    subject: Mapped[str] = mapped_column(String(250), default="")
    body: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[int | dict[str, str]]] = mapped_column(JSON, default=list)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    call_protocol: Mapped[str | None] = mapped_column(String(12), index=True)  # the call that asked for it
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    lease_owner: Mapped[str] = mapped_column(String(120), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CallbackState(str, Enum):
    PENDING = "pending"  # waiting for its next attempt: due, inside its window, an agent free
    DIALLING = "dialling"  # one attempt in flight, leased by one unit (ivr.dialer)
    ANSWERED = "answered"  # the customer answered and was put in the team's queue
    GIVEN_UP = "given_up"  # the last attempt failed: stays listed for an operator
    CANCELLED = "cancelled"  # an operator cancelled it


class AttemptOutcome(str, Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    # Originate's reply was lost and the call was not found afterwards: counted, never re-sent at once.
    UNKNOWN = "unknown"


class Callback(Base):
    """A call back the IVR owes a caller, whatever back-end holds its ticket: dialled by `ivr.dialer`.

    A unit claims a due row by one conditional UPDATE (state `pending`, due) that sets `dialling`, its
    lease and the attempt count, so two units on one database never dial the same row; the attempt
    row is written in the same transaction before the Originate is sent, so a restart finds it.
    """

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_protocol: Mapped[str] = mapped_column(String(12), index=True)  # the call that asked (or dropped)
    ticket_number: Mapped[str] = mapped_column(String(40), default="")  # the back-end's callback_request
    number: Mapped[str] = mapped_column(String(11))  # confirmed national number to dial
    team: Mapped[str] = mapped_column(String(40))  # the queue the customer goes to once they answer
    customer_id: Mapped[int | None] = mapped_column()  # the back-end's account id (no FK: may be the carrier's)
    customer_name: Mapped[str] = mapped_column(String(200), default="")
    caller_id: Mapped[str | None] = mapped_column(String(20))  # the number the call came from
    path: Mapped[str] = mapped_column(Text, default="")  # the IVR path, as agents see it ("a>b>c")
    tickets: Mapped[str] = mapped_column(String(500), default="")  # tickets opened on the call, comma-separated
    # When the team takes calls: {"schedule": {"weekdays": "08:00-18:00"}, "holidays": true}; {} = 24x7.
    window: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(20), default="requested")  # requested | dropped
    state: Mapped[CallbackState] = mapped_column(_enum(CallbackState), default=CallbackState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str] = mapped_column(String(120), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_outcome: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallbackAttempt(Base):
    """One Originate of a call back: written before it is sent, its outcome when known."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column()  # 1, 2, 3...
    unit: Mapped[str] = mapped_column(String(120))  # who dialled (the lease owner)
    action_id: Mapped[str] = mapped_column(String(64))  # the Originate's ActionID
    channel_id: Mapped[str] = mapped_column(String(64))  # the customer channel's uniqueid (Originate ChannelId)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[AttemptOutcome | None] = mapped_column(_enum(AttemptOutcome))
    detail: Mapped[str] = mapped_column(String(200), default="")  # OriginateResponse Reason, or what went wrong


class PostedAnnouncement(Base):
    """A supervisor's announcement (`ivr announce add`): callers in its scope hear it after the protocol
    from `starts_at` until `until`, or until it is ended (`ended_at`)."""

    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_until", "until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(400))
    scope_kind: Mapped[ScopeKind] = mapped_column(_enum(ScopeKind))
    scope_value: Mapped[str] = mapped_column(String(120), default="")  # the city or circuit; "" for all
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    audio: Mapped[str] = mapped_column(String(40))  # its audio: prompt announce/<audio> (ivr.voice.build)
    duration_s: Mapped[float] = mapped_column(Float)  # of that audio, as built when posted
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebRole(str, Enum):
    """What a web console account may do, each including the ones before it."""

    VIEWER = "viewer"  # sees live state, calls, reports, flow history
    EDITOR = "editor"  # also publishes and rolls back flows
    ADMIN = "admin"  # also reads the audit log and the accounts


class WebUser(Base):
    """A supervisor's account on the web console (`ivr users`); the password only as its argon2 hash."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[WebRole] = mapped_column(_enum(WebRole))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A logged-in browser: the cookie's token is kept only as its SHA-256, so the table gives no session away."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # every form of the session carries it
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoginFailure(Base):
    """A failed login, counted per account name and address to refuse guessing."""

    __tablename__ = "web_login_failures"
    __table_args__ = (Index("ix_web_login_failures_name_address_at", "name", "address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """A change made through the console or to its accounts: who, when, what."""

    __tablename__ = "web_audit"
    __table_args__ = (Index("ix_web_audit_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    who: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))  # login, logout, user.add, flow.publish...
    detail: Mapped[str] = mapped_column(Text, default="")  # an edit of a flow keeps its whole diff
    address: Mapped[str] = mapped_column(String(64), default="")


class DropOffHour(Base):
    """The drop-off per node of the calls of one flow started in one UTC hour, rolled up once the hour
    has settled (ivr.store.reports.roll_up): a month's report reads these instead of its node visits."""

    __tablename__ = "drop_off_hours"

    hour: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)  # the calls' start, to the hour
    call_flow: Mapped[str] = mapped_column(String(80), primary_key=True)  # the flow the calls started in
    flow: Mapped[str] = mapped_column(String(80), primary_key=True)  # the visited node's flow (a subflow's)
    node: Mapped[str] = mapped_column(String(80), primary_key=True)
    visits: Mapped[int] = mapped_column()
    hung_up: Mapped[int] = mapped_column()
    input_failed: Mapped[int] = mapped_column()
    failed: Mapped[int] = mapped_column()


class Rollup(Base):
    """How far a roll-up table is complete: every hour before `rolled_until` is in it."""

    __tablename__ = "rollups"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # the table rolled up
    rolled_until: Mapped[datetime] = mapped_column(UtcDateTime)
