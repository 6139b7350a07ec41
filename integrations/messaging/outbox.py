"""The outbox: messages a call asks for are written to the store in one short transaction and sent later
by a background drainer, so a call never waits for a mail server and a restart loses nothing.

    enqueue (on the call) -> row `pending` -> drainer claims it (lease) -> Sender -> `sent`
                                  ^                                          | fails
                                  +---- next_attempt_at (backoff, capped) <--+  after max attempts: `failed`

Several processes may drain one database. A row is claimed by one conditional UPDATE (still `pending`,
lease never taken or expired), which only one process can win: SQLite serialises writers (``BEGIN
IMMEDIATE``, see ivr.store.db) and PostgreSQL re-checks the condition on the locked row. The attempt is
counted when the row is claimed, so a message that crashes its process still runs out of attempts.

Attachments are either a store document id (``invoice_documents``, read when the message is sent) or,
for a document of another system (the carrier API), the file itself, captured when the call asked for
it: the row then holds everything its sender needs, so neither a restart nor the other system being
down (or changing the document) later can lose or alter what the caller was told was sent.

Delivery is at least once: a process killed while sending leaves its lease to expire and the row is
sent again later (with the same Message-ID, so mail clients show it once).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from sqlalchemy import Connection, and_, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ivr.clock import Clock
from ivr.config import OutboxSettings
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import InvoiceDocument, OutboxChannel, OutboxMessage, OutboxState, mask_recipient
from ivr.store.pointread import insert_rows

log = logging.getLogger(__name__)

_ERROR_CHARS = 500  # OutboxMessage.last_error's length
_SUBJECT_CHARS = 250  # OutboxMessage.subject's
_MIN_PAUSE_S = 0.05  # rows due but claimed by another process a moment ago: look again shortly
# The columns' defaults (pending, no attempt yet) apply; ids come back in the order of the rows given.
_INSERT = insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class Attachment:
    file_name: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class NewMessage:
    channel: OutboxChannel
    recipient: str  # a contact registered on the account, or one of our own mailboxes
    template: str  # what the message is, for operators and channels with templates (WhatsApp)
    body: str
    subject: str = ""
    attachments: tuple[int | Attachment, ...] = ()  # invoice_documents ids (read when sent), or files
    customer_id: int | None = None
    call_protocol: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed message, ready for its channel's sender."""

    id: int
    channel: OutboxChannel
    recipient: str
    template: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...]
    call_protocol: str
    created_at: datetime
    attempt: int  # 1 for the first try


class DeliveryError(Exception):
    """A sender could not deliver. `permanent` when trying again cannot help (the recipient was refused)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    async def send(self, delivery: Delivery) -> None:
        """Deliver or raise `DeliveryError`."""
        ...


@dataclass(slots=True)
class OutboxStats:
    """What this process's drainer did since it started."""

    sent: int = 0
    retrying: int = 0  # failed attempts that will be tried again
    failed: int = 0  # messages given up on


class Outbox:
    """`enqueue` from anywhere; `start()` runs the drainer for the channels that have a sender here."""

    def __init__(
        self,
        store: Store,
        senders: Mapping[OutboxChannel, Sender] | None = None,
        *,
        clock: Clock,
        conf: OutboxSettings | None = None,
        owner: str | None = None,
    ) -> None:
        self._conf = conf or OutboxSettings()  # validated: a send ends before its lease does
        self._store = store
        self._senders = dict(senders or {})
        self._clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = OutboxStats()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    # --- the call's side ---------------------------------------------------------------------------

    async def enqueue(self, *messages: NewMessage) -> list[int]:
        """Write the messages (one transaction) and wake the drainer; returns their ids. Store failures
        propagate (`StoreUnavailable`): the caller's operation reports them."""
        now = self._clock()
        rows = [
            {
                "channel": m.channel,
                "recipient": m.recipient,
                "template": m.template,
                "subject": m.subject[:_SUBJECT_CHARS],
                "body": m.body,
                "attachments": [_stored(a) for a in m.attachments],
                "customer_id": m.customer_id,
                "call_protocol": m.call_protocol,
                "created_at": now,
                "next_attempt_at": now,
            }
            for m in messages
        ]

        def write(connection: Connection) -> list[int]:
            # A Core insert on a plain connection (on SQLite on pysqlite itself): the ORM's unit of work cost
            # ~3x its CPU.
            return [message_id for (message_id,) in insert_rows(connection, _INSERT, rows)]

        ids = await self._store.write_on_loop(write)
        # The row is the record of a message queued (the console shows it); at INFO this line was ~3% of
        # the IVR's CPU in a burst of calls (two messages a call). Sent and failed messages are logged.
        for message_id, message in zip(ids, messages, strict=True):
            log.debug(
                "outbox: %s %s #%d to %s queued (call %s)",
                message.channel.value,
                message.template,
                message_id,
                mask_recipient(message.channel, message.recipient),
                message.call_protocol or "-",
            )
        self._wake.set()
        return ids

    async def pending_by_channel(self) -> dict[str, int]:
        """How many messages wait to be sent, per channel (every channel named, 0 when none): one grouped
        count, which the (state, next_attempt_at) index answers without reading the messages."""
        query = (
            select(OutboxMessage.channel, func.count())
            .where(OutboxMessage.state == OutboxState.PENDING)
            .group_by(OutboxMessage.channel)
        )
        counted = await self._store.read(lambda session: dict(session.execute(query).all()))
        return {channel.value: counted.get(channel, 0) for channel in OutboxChannel}

    # --- the drainer -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None and self._senders:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="outbox-drainer")
            self._task.add_done_callback(_report_crash)

    async def aclose(self) -> None:
        """Stop claiming; let deliveries in flight finish (within shutdown_timeout_s), then stop. A delivery
        cut short keeps its lease, and its message is sent after the lease expires."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=self._conf.shutdown_timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("outbox: %d delivery(ies) cut short at shutdown; retried after their lease", len(late))

    async def wait_until(self, predicate: Callable[[OutboxStats], bool], timeout_s: float) -> None:
        """Wait (at most `timeout_s`, then TimeoutError) until the drainer's stats satisfy `predicate`."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self.stats):
                await self._changed.wait()

    async def _run(self) -> None:
        pause = 0.0
        store_down = False
        while not self._closing:
            if pause > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), pause)
                except TimeoutError:
                    pass
            self._wake.clear()
            if self._closing:
                return
            free = self._conf.concurrency - len(self._in_flight)
            if free <= 0:
                pause = self._conf.poll_interval_s  # a finishing delivery wakes us
                continue
            try:
                claimed, next_due = await self._store.write(partial(self._claim, limit=free))
            except StoreUnavailable as exc:
                if not store_down:
                    log.warning("outbox: store unavailable, messages wait: %s", exc)
                store_down = True
                pause = self._conf.poll_interval_s
                continue
            store_down = False
            for message_id in claimed:
                task = asyncio.create_task(self._deliver(message_id), name=f"outbox-{message_id}")
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
            if next_due is None:
                pause = self._conf.poll_interval_s
            else:
                until = (next_due - self._clock()).total_seconds()
                pause = min(max(until, 0.0 if claimed else _MIN_PAUSE_S), self._conf.poll_interval_s)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    def _claim(self, session: Session, *, limit: int) -> tuple[list[int], datetime | None]:
        """Claim up to `limit` due rows of our channels; also say when the next row falls due."""
        now = self._clock()
        ours = and_(OutboxMessage.state == OutboxState.PENDING, OutboxMessage.channel.in_(list(self._senders)))
        unleased = or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)
        candidates = session.scalars(
            select(OutboxMessage.id)
            .where(ours, unleased, OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        ).all()
        claimed = []
        for message_id in candidates:
            won = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.state == OutboxState.PENDING, unleased)
                .values(
                    lease_owner=self.owner,
                    lease_until=now + timedelta(seconds=self._conf.lease_s),
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if won.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(message_id)
        due_at = case(
            (OutboxMessage.lease_until > OutboxMessage.next_attempt_at, OutboxMessage.lease_until),
            else_=OutboxMessage.next_attempt_at,
        )
        next_due = session.scalar(select(func.min(due_at)).where(ours))
        return claimed, next_due

    async def _deliver(self, message_id: int) -> None:
        error: DeliveryError | None = None
        delivery: Delivery | None = None
        try:
            delivery = await self._store.read(partial(_load, message_id=message_id))
            await asyncio.wait_for(self._senders[delivery.channel].send(delivery), self._conf.send_timeout_s)
        except DeliveryError as exc:
            error = exc
        except TimeoutError:
            error = DeliveryError(f"no answer within {self._conf.send_timeout_s:.0f} s")
        except StoreUnavailable as exc:
            error = DeliveryError(str(exc))
        except Exception as exc:  # a bug in a sender: recorded on the row (attempts bound it), logged in full
            log.exception("outbox: message #%d: unexpected error while sending", message_id)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
        who = mask_recipient(delivery.channel, delivery.recipient) if delivery else "?"
        try:
            if error is None:
                await self._store.write(partial(self._sent, message_id=message_id))
                self.stats.sent += 1
                log.info("outbox: message #%d sent to %s", message_id, who)
            elif await self._store.write(partial(self._failed, message_id=message_id, error=error)):
                self.stats.failed += 1
                log.error("outbox: message #%d to %s FAILED, given up: %s", message_id, who, error)
            else:
                self.stats.retrying += 1
                log.warning("outbox: message #%d to %s not sent, will retry: %s", message_id, who, error)
        except StoreUnavailable as exc:
            log.warning("outbox: message #%d: outcome not recorded (%s); retried after its lease", message_id, exc)
        self._changed.set()
        self._changed = asyncio.Event()

    def _sent(self, session: Session, *, message_id: int) -> None:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(state=OutboxState.SENT, sent_at=self._clock(), lease_owner="", lease_until=None, last_error="")
            .execution_options(synchronize_session=False)
        )

    def _failed(self, session: Session, *, message_id: int, error: DeliveryError) -> bool:
        """Record a failed attempt; True when the message is given up on."""
        row = session.get(OutboxMessage, message_id)
        if row is None or row.lease_owner != self.owner:
            return False  # our lease expired and another drainer has it now
        give_up = error.permanent or row.attempts >= self._conf.max_attempts
        row.last_error = str(error)[:_ERROR_CHARS]
        row.lease_owner, row.lease_until = "", None
        if give_up:
            row.state = OutboxState.FAILED
        else:
            row.next_attempt_at = self._clock() + timedelta(seconds=self.retry_delay_s(row.attempts))
        return give_up

    def retry_delay_s(self, attempts: int) -> float:
        """Pause after the `attempts`-th failure: doubling from retry_first_s, capped at retry_max_s."""
        return min(self._conf.retry_first_s * 2 ** min(attempts - 1, 32), self._conf.retry_max_s)


def _report_crash(task: asyncio.Task[None]) -> None:
    """A drainer that stops on a bug must not stop silently: messages would pile up unseen."""
    if not task.cancelled() and task.exception() is not None:
        log.error("outbox: the drainer stopped; messages wait until a restart", exc_info=task.exception())


# --- for operators (ivr db outbox) -------------------------------------------------------------------


async def listed(store: Store, *, state: OutboxState | None = None, limit: int = 50) -> list[OutboxMessage]:
    """The newest messages (of one state, if given), newest first."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OutboxMessage.state == state)
    return await store.read(lambda session: list(session.scalars(query)))


async def requeue(store: Store, ids: list[int], *, now: datetime) -> list[int]:
    """Give failed messages a fresh set of attempts from `now` (after the cause was fixed); returns those
    requeued."""

    def write(session: Session) -> list[int]:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.state == OutboxState.FAILED)
        ).all()
        for row in rows:
            row.state, row.attempts, row.next_attempt_at = OutboxState.PENDING, 0, now
        return sorted(row.id for row in rows)

    return await store.write(write)


def _stored(attachment: int | Attachment) -> int | dict[str, str]:
    """An attachment as the row's JSON keeps it."""
    if isinstance(attachment, int):
        return attachment
    return {
        "file_name": attachment.file_name,
        "content_type": attachment.content_type,
        "content_b64": base64.b64encode(attachment.content).decode("ascii"),
    }


def _load(session: Session, *, message_id: int) -> Delivery:
    row = session.get_one(OutboxMessage, message_id)
    ids = [a for a in row.attachments if isinstance(a, int)]
    documents = {
        doc.id: Attachment(doc.file_name, doc.content_type, doc.content)
        for doc in session.scalars(select(InvoiceDocument).where(InvoiceDocument.id.in_(ids)))
    }
    missing = [doc_id for doc_id in ids if doc_id not in documents]
    if missing:
        raise DeliveryError(f"attached document(s) {missing} no longer in the store", permanent=True)
    return Delivery(
        id=row.id,
        channel=row.channel,
        recipient=row.recipient,
        template=row.template,
        subject=row.subject,
        body=row.body,
        attachments=tuple(
            documents[a]
            if isinstance(a, int)
            else Attachment(a["file_name"], a["content_type"], base64.b64decode(a["content_b64"]))
            for a in row.attachments
        ),
        call_protocol=row.call_protocol or "",
        created_at=row.created_at,
        attempt=row.attempts,
    )
