"""The outbox drainer against a real SMTP server: outages, give-ups, restarts, and two drainers at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from integrations.messaging.email import SmtpSender
from integrations.messaging.outbox import NewMessage, Outbox
from ivr.clock import system_clock
from ivr.config import OutboxSettings
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import OutboxChannel, OutboxMessage, OutboxState
from tests.outbox_support import FAST, WAIT_S

from .conftest import SmtpServer, email_conf

CUSTOMER = "financeiro@serraazul.com.br"


def drainer(store: Store, smtp: SmtpServer, outboxes: list[Outbox], conf: OutboxSettings = FAST) -> Outbox:
    box = Outbox(store, {OutboxChannel.EMAIL: SmtpSender(email_conf(smtp))}, clock=system_clock, conf=conf)
    outboxes.append(box)
    return box


def note(n: int, recipient: str = CUSTOMER, attachments: tuple[int, ...] = ()) -> NewMessage:
    return NewMessage(
        OutboxChannel.EMAIL, recipient, "test", f"Mensagem {n}", subject=f"Aviso nº {n}", attachments=attachments
    )


async def rows(store: Store) -> list[OutboxMessage]:
    return await store.read(lambda s: list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))))


async def test_smtp_down_keeps_the_message_pending_until_the_server_is_back(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    await smtp.stop()
    box = drainer(store, smtp, outboxes)
    await box.start()
    await box.enqueue(note(1))
    await box.wait_until(lambda s: s.retrying >= 2, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.PENDING and row.attempts >= 2
    assert f"127.0.0.1:{smtp.port}" in row.last_error and row.sent_at is None

    await smtp.start()
    received = await smtp.next()
    assert received.message["Subject"] == "Aviso nº 1" and received.rcpt_tos == (CUSTOMER,)
    await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.SENT and row.sent_at is not None and row.last_error == ""
    assert row.lease_until is None


async def test_after_max_attempts_the_message_is_failed_for_an_operator(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    await smtp.stop()
    box = drainer(store, smtp, outboxes, FAST.model_copy(update={"max_attempts": 3}))
    await box.start()
    await box.enqueue(note(1))
    await box.wait_until(lambda s: s.failed == 1, WAIT_S)
    [row] = await rows(store)
    assert (row.state, row.attempts, row.sent_at) == (OutboxState.FAILED, 3, None)
    assert "127.0.0.1" in row.last_error
    assert box.stats.retrying == 2


async def test_a_refused_recipient_fails_at_once_and_others_still_go(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    smtp.refuse.add("ti@serraazul.com.br")
    box = drainer(store, smtp, outboxes)
    await box.start()
    await box.enqueue(note(1, "ti@serraazul.com.br"), note(2))
    assert (await smtp.next()).rcpt_tos == (CUSTOMER,)
    await box.wait_until(lambda s: s.failed == 1 and s.sent == 1, WAIT_S)
    refused, sent = await rows(store)
    assert (refused.state, refused.attempts, sent.state) == (OutboxState.FAILED, 1, OutboxState.SENT)
    assert "550" in refused.last_error and "ti@" not in refused.last_error  # addresses masked


async def test_a_recipient_of_several_addresses_fails_at_once_and_reaches_nobody(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    box = drainer(store, smtp, outboxes)
    await box.start()
    await box.enqueue(note(1, "ana@x.com.br, bia@y.com.br"), note(2))
    assert (await smtp.next()).rcpt_tos == (CUSTOMER,)  # the other message only
    await box.wait_until(lambda s: s.failed == 1 and s.sent == 1, WAIT_S)
    several, sent = await rows(store)
    assert (several.state, several.attempts, sent.state) == (OutboxState.FAILED, 1, OutboxState.SENT)
    assert "a***@x.com.br, b***@y.com.br" in several.last_error and "not one address" in several.last_error


async def test_a_document_gone_from_the_store_fails_the_message(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    box = drainer(store, smtp, outboxes)
    await box.start()
    await box.enqueue(note(1, attachments=(999_999,)))
    await box.wait_until(lambda s: s.failed == 1, WAIT_S)
    [row] = await rows(store)
    assert row.state is OutboxState.FAILED and "999999" in row.last_error
    assert smtp.received == []


async def test_a_restart_delivers_pending_messages_exactly_once(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    first = drainer(store, smtp, outboxes)
    await first.start()
    await first.enqueue(note(0))
    await first.wait_until(lambda s: s.sent == 1, WAIT_S)
    await smtp.stop()
    await first.enqueue(note(1), note(2))
    await first.wait_until(lambda s: s.retrying >= 2, WAIT_S)
    await first.aclose()  # the process stops with two messages still pending

    await smtp.start()
    again = Store(store.url, busy_timeout_s=10)
    try:
        second = drainer(again, smtp, outboxes)
        await second.start()
        await second.wait_until(lambda s: s.sent == 2, WAIT_S)
        await second.aclose()
    finally:
        await again.aclose()
    subjects = [r.message["Subject"] for r in smtp.received]
    assert subjects[0] == "Aviso nº 0" and sorted(subjects[1:]) == ["Aviso nº 1", "Aviso nº 2"]
    assert {row.state for row in await rows(store)} == {OutboxState.SENT}


async def test_two_drainers_on_one_database_never_send_a_message_twice(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    conf = FAST.model_copy(update={"concurrency": 3})
    other = Store(store.url, busy_timeout_s=10)
    try:
        boxes = [drainer(store, smtp, outboxes, conf), drainer(other, smtp, outboxes, conf)]
        await boxes[0].enqueue(*(note(n) for n in range(40)))
        for box in boxes:
            await box.start()
        await smtp.messages(40)
        for box in boxes:
            await box.aclose()  # waits for deliveries in flight: nothing more can arrive after this
    finally:
        await other.aclose()
    subjects = [r.message["Subject"] for r in smtp.received]
    assert sorted(subjects) == sorted(f"Aviso nº {n}" for n in range(40))
    assert len({r.message["Message-ID"] for r in smtp.received}) == 40
    assert sum(box.stats.sent for box in boxes) == 40
    assert {(row.state, row.attempts) for row in await rows(store)} == {(OutboxState.SENT, 1)}


async def test_two_drainers_on_one_sqlite_file(tmp_path: Path, smtp: SmtpServer, outboxes: list[Outbox]) -> None:
    """The same race on the embedded default, on an empty store (no seed needed for plain messages)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite3'}"
    stores = [Store(url, busy_timeout_s=10), Store(url, busy_timeout_s=10)]
    try:
        await upgrade(stores[0])
        conf = FAST.model_copy(update={"concurrency": 4})
        boxes = [drainer(db, smtp, outboxes, conf) for db in stores]
        for n in range(30):
            await boxes[n % 2].enqueue(note(n))
        await boxes[0].start()
        await boxes[1].start()
        await smtp.messages(30)
        for box in boxes:
            await box.aclose()
        sent = await rows(stores[1])
    finally:
        for db in stores:
            await db.aclose()
    assert len(smtp.received) == 30 and len({r.message["Message-ID"] for r in smtp.received}) == 30
    assert {(row.state, row.attempts) for row in sent} == {(OutboxState.SENT, 1)}


async def test_a_lease_left_by_a_dead_drainer_is_taken_over_and_a_live_one_is_not(
    store: Store, smtp: SmtpServer, outboxes: list[Outbox]
) -> None:
    box = drainer(store, smtp, outboxes)
    dead, alive = await box.enqueue(note(1), note(2))
    now = system_clock()  # the drainer's clock

    def lease(session, message_id: int, owner: str, until: datetime) -> None:  # type: ignore[no-untyped-def]
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(lease_owner=owner, lease_until=until, attempts=1)
        )

    await store.write(lambda s: lease(s, dead, "crashed-host:1", now - timedelta(seconds=1)))
    await store.write(lambda s: lease(s, alive, "busy-host:2", now + timedelta(minutes=5)))
    await box.start()
    assert (await smtp.next()).message["Subject"] == "Aviso nº 1"
    await box.wait_until(lambda s: s.sent == 1, WAIT_S)
    await box.aclose()
    first, second = await rows(store)
    assert (first.state, first.attempts) == (OutboxState.SENT, 2)
    assert (second.state, second.lease_owner) == (OutboxState.PENDING, "busy-host:2")
    assert len(smtp.received) == 1
