"""The WhatsApp operations, called as the engine calls them, down to what the Cloud API fake receives:
only numbers registered on the account, the digitable line only for a confirmed account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from integrations.catalog import build_registry, declared_registry
from integrations.messaging import whatsapp_operations
from integrations.messaging.messages import CallAccounts, StoreSource
from integrations.messaging.outbox import NewMessage, Outbox
from integrations.messaging.whatsapp import WhatsAppSender
from ivr.clock import ManualClock, system_clock
from ivr.config import load_settings
from ivr.domain import ContactKind, DocumentKind, InvoiceStatus
from ivr.engine.operations import OperationRegistry, OperationStatus
from ivr.store import boleto
from ivr.store.db import Store, StoreUnavailable
from ivr.store.models import Contact, Customer, Invoice, InvoiceDocument, OutboxChannel, OutboxMessage
from tests.outbox_support import FAST, NOW, PROTOCOL, WAIT_S, Caller

from .conftest import CloudApi

MARTA = "5531988887777"  # Serra Azul's registered WhatsApp
HOSPITAL_CNPJ = "45263816000146"  # Hospital Vale do Aço: landlines only


@pytest.fixture
async def registry(store: Store, cloud: CloudApi, outboxes: list[Outbox]) -> AsyncIterator[OperationRegistry]:
    box = Outbox(store, {OutboxChannel.WHATSAPP: WhatsAppSender(cloud.settings())}, clock=system_clock, conf=FAST)
    outboxes.append(box)
    await box.start()
    registry = build_registry(store, outbox=box, settings=load_settings(), clock=lambda: NOW)
    yield registry
    await registry.aclose()


async def queued(store: Store) -> list[OutboxMessage]:
    return await store.read(
        lambda s: list(
            s.scalars(select(OutboxMessage).where(OutboxMessage.channel == OutboxChannel.WHATSAPP))
        )
    )


async def latest_boleto(store: Store, cnpj: str) -> tuple[Invoice, str]:
    def read(session: Any) -> tuple[Invoice, str]:
        invoice, line = session.execute(
            select(Invoice, InvoiceDocument.digitable_line)
            .join(Invoice.documents)
            .join(Customer)
            .where(Customer.cnpj == cnpj, InvoiceDocument.kind == DocumentKind.BOLETO)
            .order_by(Invoice.reference_month.desc())
            .limit(1)
        ).one()
        return invoice, line

    return await store.read(read)


def test_flow_check_knows_the_operations_and_their_results() -> None:
    declared = declared_registry()
    protocol, line = declared.get("whatsapp_protocol"), declared.get("whatsapp_digitable_line")
    assert protocol is not None and protocol.results == ("protocol", "sent_to_masked") and protocol.args == ()
    assert line is not None and [(a.name, a.required) for a in line.args] == [("month", False)]


async def test_the_protocol_goes_to_the_accounts_registered_whatsapp_never_to_the_calling_number(
    registry: OperationRegistry, cloud: CloudApi, store: Store
) -> None:
    caller = Caller(registry)  # the reception's landline; the account's WhatsApp is Marta's mobile
    await caller.op("customer_by_caller_id")
    result = await caller.op("whatsapp_protocol")
    assert result.status is OperationStatus.FOUND
    assert result.data == {"protocol": PROTOCOL, "sent_to_masked": "55*********77"}
    sent = await cloud.next()
    assert sent.to == MARTA and sent.template == "sac_protocolo"
    assert sent.parameters == ("Transportes Serra Azul Ltda", "10/03/2026 às 10:00", PROTOCOL)
    [row] = await queued(store)
    assert row.call_protocol == PROTOCOL and row.customer_id == caller.customer_id


async def test_a_caller_from_an_unregistered_mobile_is_never_written_to(
    registry: OperationRegistry, cloud: CloudApi, outboxes: list[Outbox]
) -> None:
    caller = Caller(registry, caller_id="31977776666")  # not on any account
    assert (await caller.op("customer_by_caller_id")).status is OperationStatus.NOT_FOUND
    assert (await caller.op("whatsapp_protocol")).status is OperationStatus.NOT_FOUND
    await caller.op("customer_by_cnpj", cnpj="11222333000181")  # now identified by the CNPJ
    assert (await caller.op("whatsapp_protocol")).status is OperationStatus.FOUND
    await outboxes[0].wait_until(lambda s: s.sent == 1, WAIT_S)
    assert [s.to for s in cloud.sent] == [MARTA]


async def test_an_account_with_no_whatsapp_and_no_mobile_gets_nothing(
    registry: OperationRegistry, store: Store
) -> None:
    caller = Caller(registry, caller_id=None)
    await caller.op("customer_by_cnpj", cnpj=HOSPITAL_CNPJ)
    result = await caller.op("whatsapp_protocol")
    assert result.status is OperationStatus.NOT_FOUND and "no WhatsApp" in result.message
    assert await queued(store) == []


async def test_without_a_whatsapp_contact_the_registered_mobiles_get_it_once_each(
    registry: OperationRegistry, cloud: CloudApi, store: Store, outboxes: list[Outbox]
) -> None:
    def register(session: Any) -> None:
        hospital = session.scalars(select(Customer).where(Customer.cnpj == HOSPITAL_CNPJ)).one()
        session.add_all(
            Contact(customer_id=hospital.id, kind=ContactKind.PHONE, value=value, name="Diretoria")
            for value in ("31991112222", "+55 (31) 99111-2222", "3138219999")  # one mobile twice, a landline
        )

    await store.write(register)
    caller = Caller(registry, caller_id=None)
    await caller.op("customer_by_cnpj", cnpj=HOSPITAL_CNPJ)
    assert (await caller.op("whatsapp_protocol")).data["sent_to_masked"] == "55*********22"
    await outboxes[0].wait_until(lambda s: s.sent == 1, WAIT_S)
    assert [s.to for s in cloud.sent] == ["5531991112222"]
    assert len(await queued(store)) == 1


async def test_the_digitable_line_needs_a_confirmed_account(
    registry: OperationRegistry, store: Store
) -> None:
    caller = Caller(registry)
    await caller.op("customer_by_caller_id")  # identified by caller ID only
    result = await caller.op("whatsapp_digitable_line")
    assert result.status is OperationStatus.NOT_FOUND and result.message == "account not confirmed"
    assert await queued(store) == []


async def test_the_confirmed_caller_gets_the_latest_open_boletos_digitable_line(
    registry: OperationRegistry, cloud: CloudApi, store: Store
) -> None:
    invoice, line = await latest_boleto(store, "11222333000181")
    assert invoice.status is InvoiceStatus.OPEN  # the seed's latest invoice is due next month
    caller = await Caller(registry).confirmed_account()
    result = await caller.op("whatsapp_digitable_line")
    assert result.status is OperationStatus.FOUND
    assert result.data == {"month": f"{invoice.reference_month:%Y-%m}", "sent_to_masked": "55*********77"}
    sent = await cloud.next()
    assert sent.template == "sac_linha_digitavel" and sent.to == MARTA
    name, protocol, month, due, said_line = sent.parameters
    assert (name, protocol, due) == ("Transportes Serra Azul Ltda", PROTOCOL, f"{invoice.due_date:%d/%m/%Y}")
    assert month.endswith(f"de {invoice.reference_month.year}")
    assert said_line == boleto.formatted(line) and said_line.replace(".", "").replace(" ", "") == line


@pytest.mark.parametrize(
    ("month", "status", "why"),
    [
        ("2019-01", InvoiceStatus.OPEN, "no boleto"),
        ("2026-13", InvoiceStatus.OPEN, "not YYYY-MM"),
        ("", InvoiceStatus.PAID, "paid"),
        ("", InvoiceStatus.OVERDUE, "overdue"),
    ],
)
async def test_no_line_is_sent_for_a_missing_month_or_an_invoice_not_open(
    registry: OperationRegistry, store: Store, month: str, status: InvoiceStatus, why: str
) -> None:
    invoice, _ = await latest_boleto(store, "11222333000181")
    await store.write(lambda s: s.get_one(Invoice, invoice.id).__setattr__("status", status))
    caller = await Caller(registry).confirmed_account()
    result = await caller.op("whatsapp_digitable_line", month=month)
    assert result.status is OperationStatus.NOT_FOUND and why in result.message
    assert await queued(store) == []


class DownOutbox(Outbox):
    async def enqueue(self, *messages: NewMessage) -> list[int]:
        raise StoreUnavailable("database is locked")


async def test_an_outbox_that_cannot_be_written_is_the_flows_error_branch(store: Store) -> None:
    clock = ManualClock(NOW)
    source = StoreSource(store, timezone="America/Sao_Paulo", clock=clock)
    operations = whatsapp_operations.WhatsAppOperations(
        source,
        DownOutbox(store, clock=clock),
        conf=load_settings().whatsapp,
        accounts=CallAccounts(source),
        timezone="America/Sao_Paulo",
        clock=clock,
    )
    registry = OperationRegistry()
    registry.register_all(operations)
    caller = Caller(registry)
    caller.customer_id = 1  # Transportes Serra Azul, the first account seeded
    result = await caller.op("whatsapp_protocol")
    assert result.status is OperationStatus.ERROR and "database is locked" in result.message


def test_the_templates_documented_match_the_parameters_sent() -> None:
    doc = whatsapp_operations.__doc__ or ""
    assert "sac_protocolo), 3 body parameters" in doc and "sac_linha_digitavel), 5 body parameters" in doc
