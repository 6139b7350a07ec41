"""The e-mail operations, called as the engine calls them, down to what the SMTP server receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from integrations.catalog import build_registry, declared_registry
from integrations.messaging.email import SmtpSender
from integrations.messaging.messages import Account, StoreSource
from integrations.messaging.outbox import Outbox
from ivr.clock import ManualClock, system_clock
from ivr.config import load_settings
from ivr.domain import ContactKind, DocumentKind
from ivr.engine.operations import OperationContext, OperationRegistry, OperationStatus
from ivr.protocol_number import make_call_protocol
from ivr.store.db import Store
from ivr.store.models import Contact, Customer, Invoice, InvoiceDocument, OutboxChannel, OutboxMessage
from ivr.store.seed import KNOWN_CALLER
from tests.outbox_support import FAST, NOW, PROTOCOL, Caller

from .conftest import SmtpServer, email_conf

SERRA_AZUL = ("financeiro@serraazul.com.br", "ti@serraazul.com.br")


@pytest.fixture
async def registry(store: Store, smtp: SmtpServer, outboxes: list[Outbox]) -> AsyncIterator[OperationRegistry]:
    box = Outbox(store, {OutboxChannel.EMAIL: SmtpSender(email_conf(smtp))}, clock=system_clock, conf=FAST)
    outboxes.append(box)
    await box.start()
    yield build_registry(store, outbox=box, settings=load_settings(), clock=lambda: NOW)


def attachments(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    return [
        (part.get_filename() or "", part.get_content_type(), part.get_content())
        for part in message.iter_attachments()
    ]


async def registered_emails(store: Store, cnpj: str) -> set[str]:
    return set(
        await store.read(
            lambda s: s.scalars(
                select(Contact.value)
                .join(Customer)
                .where(Customer.cnpj == cnpj, Contact.kind == ContactKind.EMAIL)
            ).all()
        )
    )


async def queued(store: Store) -> int:
    return await store.read(lambda s: s.scalar(select(func.count()).select_from(OutboxMessage)))


async def test_the_protocol_and_the_calls_tickets_go_to_every_registered_email(
    registry: OperationRegistry, store: Store, smtp: SmtpServer
) -> None:
    caller = Caller(registry)
    await caller.op("customer_by_caller_id")
    ticket = await caller.op("open_ticket", kind="complaint", description="atendimento demorado")
    result = await caller.op("email_protocol")
    assert result.status is OperationStatus.FOUND
    assert result.data == {"protocol": PROTOCOL, "sent_to_masked": "f***@serraazul.com.br, t***@serraazul.com.br"}

    received = await smtp.messages(2)
    assert {r.rcpt_tos for r in received} == {(a,) for a in await registered_emails(store, "11222333000181")}
    message = received[0].message
    assert message["Subject"] == f"Protocolo de atendimento {PROTOCOL} - American Tower Fibra"
    assert message["From"] == "American Tower Fibra <atendimento.fibra@americantower.com>"
    assert message["X-SAC-Protocolo"] == PROTOCOL
    body = message.get_body().get_content()
    assert message.get_body().get_content_charset() == "utf-8"
    assert "Olá, Transportes Serra Azul Ltda." in body
    assert "ligação de 10/03/2026 às 10:00" in body
    assert f"Protocolo de atendimento: {PROTOCOL}" in body
    # A complaint's answer deadline is the regulation's: 5 business days after Tuesday 10 March 2026.
    assert f"- Reclamação nº {ticket.data['number']}, prazo 17/03/2026" in body


async def test_no_protocol_mail_without_an_account_or_a_registered_email(
    registry: OperationRegistry, store: Store, smtp: SmtpServer
) -> None:
    assert (await Caller(registry, None).op("email_protocol")).status is OperationStatus.NOT_FOUND
    await store.write(lambda s: s.execute(delete(Contact).where(Contact.kind == ContactKind.EMAIL)))
    caller = Caller(registry)
    await caller.op("customer_by_caller_id")
    assert (await caller.op("email_protocol")).status is OperationStatus.NOT_FOUND
    assert await queued(store) == 0


@pytest.mark.parametrize(
    "field", ["ana@x.com.br bia@y.com.br", "ana@x.com.br,bia@y.com.br", "ana@x.com.br; bia@y.com.br"]
)
async def test_a_field_of_several_addresses_sends_to_none_and_says_why_masked(
    registry: OperationRegistry, store: Store, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    def one_field_of_several(session: Any) -> None:
        customer = session.scalars(select(Customer).where(Customer.cnpj == "11222333000181")).one()
        session.execute(delete(Contact).where(Contact.kind == ContactKind.EMAIL))
        session.add(Contact(customer_id=customer.id, kind=ContactKind.EMAIL, value=field))

    await store.write(one_field_of_several)
    caller = await Caller(registry).confirmed_account()
    assert (await caller.op("email_protocol")).status is OperationStatus.NOT_FOUND
    assert (await caller.op("send_document", kind="boleto")).status is OperationStatus.NOT_FOUND
    assert await queued(store) == 0
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "not one address (a***@x.com.br, b***@y.com.br)" in logged
    assert "ana@" not in logged and "bia@" not in logged


@pytest.mark.parametrize(
    ("kind", "month", "reference", "file_name", "says"),
    [
        ("boleto", "", "2026-03", "boleto-100200-2026-03.pdf", "Linha digitável: "),
        ("boleto", "2026-02", "2026-02", "boleto-100200-2026-02.pdf", "Esta fatura está vencida"),
        ("nota_fiscal", "2026-01", "2026-01", "nota-fiscal-100200-2026-01.pdf", "Nota fiscal nº "),
    ],
)
async def test_a_document_goes_attached_to_the_registered_emails(
    registry: OperationRegistry,
    store: Store,
    smtp: SmtpServer,
    kind: str,
    month: str,
    reference: str,
    file_name: str,
    says: str,
) -> None:
    caller = await Caller(registry).confirmed_account()
    result = await caller.op("send_document", kind=kind, month=month)
    assert result.status is OperationStatus.FOUND
    assert result.data == {
        "month": reference,
        "kind": kind,
        "sent_to_masked": "f***@serraazul.com.br, t***@serraazul.com.br",
    }
    year, number = map(int, reference.split("-"))

    def stored(session: Any) -> bytes:
        return session.scalars(
            select(InvoiceDocument.content)
            .join(Invoice)
            .join(Customer)
            .where(
                Customer.code == "100200",
                Invoice.reference_month == date(year, number, 1),
                InvoiceDocument.kind == DocumentKind(kind),
            )
        ).one()

    pdf = await store.read(stored)
    received = await smtp.messages(2)
    assert {r.rcpt_tos for r in received} == {(a,) for a in SERRA_AZUL}
    for r in received:
        assert attachments(r.message) == [(file_name, "application/pdf", pdf)]
        assert pdf.startswith(b"%PDF-1.4")
    message = received[0].message
    month_name = {"2026-01": "janeiro", "2026-02": "fevereiro", "2026-03": "março"}[reference]
    label = "Segunda via do boleto" if kind == "boleto" else "Cópia da nota fiscal"
    assert message["Subject"] == f"{label} - {month_name} de 2026 - American Tower Fibra"
    headers = received[0].raw.split(b"\r\n\r\n")[0]
    assert headers.isascii()  # accents travel encoded (RFC 2047), readable by any mail client
    body = message.get_body().get_content()
    assert f"(protocolo {PROTOCOL})" in body and f"referente a {month_name} de 2026" in body and says in body


@pytest.mark.parametrize(
    ("confirm", "args", "status"),
    [
        (False, {"kind": "boleto"}, OperationStatus.NOT_FOUND),  # caller ID alone confirms nothing
        (True, {"kind": "boleto", "month": "2025-01"}, OperationStatus.NOT_FOUND),  # no invoice that month
        (True, {"kind": "nota_fiscal", "month": "março"}, OperationStatus.NOT_FOUND),
        (True, {"kind": "contrato"}, OperationStatus.ERROR),
    ],
)
async def test_no_document_mail_when_it_cannot_be_sent(
    registry: OperationRegistry, store: Store, confirm: bool, args: dict[str, str], status: OperationStatus
) -> None:
    caller = Caller(registry)
    if confirm:
        await caller.confirmed_account()
    else:
        await caller.op("customer_by_caller_id")
    assert (await caller.op("send_document", **args)).status is status
    assert await queued(store) == 0


async def test_a_missing_document_is_not_found(registry: OperationRegistry, store: Store) -> None:
    nota_fiscal = InvoiceDocument.kind == DocumentKind.NOTA_FISCAL
    await store.write(lambda s: s.execute(delete(InvoiceDocument).where(nota_fiscal)))
    caller = await Caller(registry).confirmed_account()
    assert (await caller.op("send_document", kind="nota_fiscal")).status is OperationStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("team", "mailbox"),
    [("bgp", "bgp.fibra@americantower.com"), ("scheduled_activity", "sir.fibra@americantower.com")],
)
async def test_a_team_request_goes_to_the_teams_mailbox_with_the_call(
    registry: OperationRegistry, smtp: SmtpServer, team: str, mailbox: str
) -> None:
    caller = Caller(registry)
    await caller.op("customer_by_caller_id")
    result = await caller.op(
        "email_team",
        team=team,
        subject="Solicitação de alteração",
        details="Trocar a janela para sábado à noite",
    )
    assert result.status is OperationStatus.FOUND and result.data == {"queued": True, "team": team}
    received = await smtp.next()
    assert received.rcpt_tos == (mailbox,)
    assert received.message["Subject"].endswith(f"Solicitação de alteração - protocolo {PROTOCOL}")
    body = received.message.get_body().get_content()
    for text in (
        f"Protocolo da ligação: {PROTOCOL}",
        f"Telefone de origem: {KNOWN_CALLER}",
        "Cliente: Transportes Serra Azul Ltda (identificado pelo telefone, não confirmado)",
        "CNPJ: 11222333000181",
        "Trocar a janela para sábado à noite",
    ):
        assert text in body


async def test_an_unknown_team_is_an_error(registry: OperationRegistry) -> None:
    result = await Caller(registry).op("email_team", team="noc", subject="x")
    assert result.status is OperationStatus.ERROR


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_checker_knows_every_operation_a_call_can_run(registry: OperationRegistry) -> None:
    declared = {spec.name: (spec.args, spec.results, spec.identifies) for spec in declared_registry()}
    assert declared == {spec.name: (spec.args, spec.results, spec.identifies) for spec in registry}
    assert {"email_protocol", "send_document", "email_team", "open_ticket"} <= set(declared)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_with_the_carrier_api_no_mail_goes_to_the_stores_account_of_the_same_id(store: Store) -> None:
    """The carrier's customer 1 is not the store's customer 1: the e-mail operations refuse to guess."""
    clock = ManualClock(NOW)
    registry = build_registry(
        store, outbox=Outbox(store, clock=clock), settings=load_settings(backend="http"), clock=clock
    )
    try:
        ctx = OperationContext(PROTOCOL, KNOWN_CALLER, 1, True)
        for name, args in (("email_protocol", {}), ("send_document", {"kind": "boleto"})):
            assert (await registry.call(name, args, ctx)).status is OperationStatus.ERROR
        assert await queued(store) == 0
    finally:
        await registry.aclose()


async def test_a_calls_messages_read_its_account_once_and_another_call_reads_it_afresh(
    registry: OperationRegistry, store: Store, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protocol by e-mail and by WhatsApp on one call: one read of the account and its contacts (each is
    a point read on the call's loop); the next call sees a contact registered meanwhile."""
    reads: list[int] = []
    read_account = StoreSource.account

    async def counted(source: StoreSource, customer_id: int) -> Account:
        reads.append(customer_id)
        return await read_account(source, customer_id)

    monkeypatch.setattr(StoreSource, "account", counted)
    caller = Caller(registry)
    await caller.op("customer_by_caller_id")
    assert (await caller.op("email_protocol")).status is OperationStatus.FOUND
    assert (await caller.op("whatsapp_protocol")).status is OperationStatus.FOUND
    assert len(reads) == 1

    customer_id = caller.customer_id
    assert customer_id is not None
    noc = Contact(customer_id=customer_id, kind=ContactKind.EMAIL, value="noc@serraazul.com.br")
    await store.write(lambda s: s.add(noc))
    ctx = OperationContext(make_call_protocol(2026, 4243), KNOWN_CALLER, customer_id, False)
    result = await registry.call("email_protocol", {}, ctx)
    assert len(reads) == 2 and result.data["sent_to_masked"].endswith(", n***@serraazul.com.br")
    assert len(await smtp.messages(5)) == 5  # 2 then 3 recipients
