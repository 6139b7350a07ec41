"""The e-mail and WhatsApp operations with ``backend: http``: contacts and documents from the carrier API,
messages through the outbox to the account's registered contacts only."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from integrations.catalog import build_registry
from integrations.messaging.email import SmtpSender
from integrations.messaging.outbox import Outbox, Sender
from integrations.messaging.whatsapp import WhatsAppSender
from ivr.app import build_services
from ivr.clock import ManualClock, system_clock
from ivr.config import Settings, load_settings
from ivr.engine.context import Outcome
from ivr.engine.interpreter import run_call
from ivr.engine.operations import OperationRegistry, OperationStatus
from ivr.engine.ports import CallInfo
from ivr.engine.scripted import ScriptedChannel
from ivr.flows.loader import parse_flow
from ivr.store import boleto
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import OutboxChannel, OutboxMessage, OutboxState
from tests.email.conftest import SmtpServer, email_conf
from tests.outbox_support import FAST
from tests.whatsapp.conftest import CloudApi

from .carrier_fake import EMAIL, KNOWN_CALLER, NOW, PROTOCOL, WHATSAPP, CarrierFake, Fault, digitable_line, pdf
from .conftest import TIMINGS, Caller

LATEST = 12  # account 1's latest invoice (2026-11, open)
FLOW = """
flow: boleto_by_mail
start: who
nodes:
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: confirm, not_found: agent, error: sorry}
  confirm:
    collect: {prompt: type_cnpj_root, into: root, min_digits: 8, max_digits: 8, then: agent}
    next: check
  check:
    lookup:
      operation: customer_by_cnpj
      args: {cnpj: "{{ root }}"}
      into: me
      found: send
      not_found: agent
      error: sorry
  send:
    lookup: {operation: send_document, args: {kind: boleto}, into: sent, found: done, not_found: agent, error: sorry}
  done:
    hangup: goodbye
  sorry:
    play: system_unavailable
    next: agent
  agent:
    queue: {name: billing, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""


def http_settings(carrier: CarrierFake, tmp_path: Path, **changes: Any) -> Settings:
    return load_settings(
        backend="http",
        carrier_api={"base_url": carrier.base_url, **TIMINGS},
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}",
        var_dir=tmp_path,
        outbox=FAST,
        **changes,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """Our own store: only the outbox; the accounts are the carrier's."""
    db = Store(f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}")
    await upgrade(db)
    yield db
    await db.aclose()


async def registry_over(
    store: Store, settings: Settings, senders: dict[OutboxChannel, Sender]
) -> tuple[OperationRegistry, Outbox]:
    box = Outbox(store, senders, clock=system_clock, conf=FAST)
    await box.start()
    return build_registry(store, outbox=box, settings=settings, clock=lambda: NOW), box


async def confirmed(registry: OperationRegistry) -> Caller:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    found = await caller.op("customer_by_cnpj", cnpj="11222333")
    assert found.status is OperationStatus.FOUND and caller.ctx.account_confirmed
    return caller


async def test_a_call_asking_for_the_boleto_gets_the_carriers_pdf_at_the_registered_address(
    tmp_path: Path, carrier: CarrierFake, smtp: SmtpServer
) -> None:
    settings = http_settings(carrier, tmp_path, email=email_conf(smtp))
    flow = parse_flow(textwrap.dedent(FLOW), tmp_path / "boleto.yaml")
    channel = ScriptedChannel(CallInfo(caller_id=KNOWN_CALLER, dialled="30033336"), ["11222333"])
    async with build_services(settings, clock=ManualClock(NOW)) as services:
        result = await run_call(flow, channel, services, settings=settings)
        received = await smtp.next()

    assert result.outcome is Outcome.ENDED and result.path[-2:] == ["send", "done"]
    assert result.variables["sent"]["month"] == "2026-11"
    assert received.rcpt_tos == (EMAIL,)
    [attached] = list(received.message.iter_attachments())
    assert attached.get_content() == pdf("boleto", LATEST)
    assert boleto.formatted(digitable_line(LATEST)) in received.message.get_body().get_content()
    assert carrier.hits[f"GET /invoices/{LATEST}/boleto.pdf"] == 1


async def test_the_queued_mail_carries_its_pdf_so_it_goes_out_after_a_restart_with_the_carrier_down(
    tmp_path: Path, carrier: CarrierFake, smtp: SmtpServer, store: Store
) -> None:
    settings = http_settings(carrier, tmp_path)
    # What is tested is the queued mail, not the carrier's speed: deadlines a loaded machine always meets.
    relaxed = {"read_deadline_s": 10.0, "write_deadline_s": 10.0, "attempt_timeout_s": 5.0, "connect_timeout_s": 5.0}
    settings = settings.model_copy(update={"carrier_api": settings.carrier_api.model_copy(update=relaxed)})
    registry, box = await registry_over(store, settings, {})  # this process sends nothing
    caller = await confirmed(registry)
    sent = await caller.op("send_document", kind="nota_fiscal", month="2026-10")
    await registry.aclose()
    await box.aclose()
    assert sent.status is OperationStatus.FOUND and sent.data["month"] == "2026-10"
    [row] = await store.read(lambda s: list(s.scalars(select(OutboxMessage))))
    assert row.customer_id is None  # the carrier's customer id is not one of our store's
    assert row.state is OutboxState.PENDING

    carrier.misbehave("GET /invoices/11/nota-fiscal.pdf", Fault.ERROR_500)
    restarted = Outbox(store, {OutboxChannel.EMAIL: SmtpSender(email_conf(smtp))}, clock=system_clock, conf=FAST)
    await restarted.start()
    try:
        received = await smtp.next()
    finally:
        await restarted.aclose()
    [attached] = list(received.message.iter_attachments())
    assert attached.get_content() == pdf("nota-fiscal", 11) and received.rcpt_tos == (EMAIL,)
    assert "Nota fiscal nº NF-11" in received.message.get_body().get_content()
    assert carrier.hits["GET /invoices/11/nota-fiscal.pdf"] == 1  # fetched once, on the call


async def test_documents_go_only_to_a_confirmed_account(
    tmp_path: Path, carrier: CarrierFake, store: Store
) -> None:
    registry, box = await registry_over(store, http_settings(carrier, tmp_path), {})
    try:
        caller = Caller(registry, KNOWN_CALLER)
        await caller.op("customer_by_caller_id")  # identified by the phone, not confirmed
        refused = [await caller.op("send_document", kind="boleto"), await caller.op("whatsapp_digitable_line")]
    finally:
        await registry.aclose()
        await box.aclose()
    assert [r.status for r in refused] == [OperationStatus.NOT_FOUND] * 2
    assert not [route for route in carrier.hits if route.startswith("GET /invoices")]
    assert await store.read(lambda s: list(s.scalars(select(OutboxMessage)))) == []


async def test_whatsapp_messages_reach_the_accounts_registered_whatsapp(
    tmp_path: Path, carrier: CarrierFake, cloud: CloudApi, store: Store
) -> None:
    settings = http_settings(carrier, tmp_path, whatsapp=cloud.settings())
    registry, box = await registry_over(store, settings, {OutboxChannel.WHATSAPP: WhatsAppSender(cloud.settings())})
    try:
        caller = await confirmed(registry)
        protocol = await caller.op("whatsapp_protocol")
        first = await cloud.next()
        line = await caller.op("whatsapp_digitable_line")
        second = await cloud.next()
    finally:
        await registry.aclose()
        await box.aclose()
    assert protocol.status is OperationStatus.FOUND and line.status is OperationStatus.FOUND
    assert first.to == second.to == f"55{WHATSAPP}"  # not the landline the caller rang from
    assert first.template == "sac_protocolo" and first.parameters[0] == "Padaria Pão Quente Ltda"
    assert first.parameters[2] == PROTOCOL
    assert second.template == "sac_linha_digitavel" and second.parameters[4] == boleto.formatted(digitable_line(LATEST))


async def test_with_the_carrier_down_the_caller_is_told_and_offered_a_person(
    tmp_path: Path, carrier: CarrierFake, smtp: SmtpServer
) -> None:
    settings = http_settings(carrier, tmp_path, email=email_conf(smtp))
    flow = parse_flow(textwrap.dedent(FLOW), tmp_path / "boleto.yaml")
    channel = ScriptedChannel(CallInfo(caller_id=KNOWN_CALLER, dialled="30033336"), ["11222333"])
    async with build_services(settings, clock=ManualClock(NOW)) as services:
        carrier.misbehave("GET /customers/1/contacts", Fault.ERROR_500)
        result = await run_call(flow, channel, services, settings=settings)

    assert result.path[-3:] == ["send", "sorry", "agent"] and result.summary == "queue:billing"
    assert any("system_unavailable" in e.prompt_ids for e in channel.events if e.kind == "play")
    assert smtp.received == []
