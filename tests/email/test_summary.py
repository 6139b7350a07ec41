"""The written summary of a call (integrations/messaging/call_summary.py): what was opened, each with its deadline,
queued through the outbox to the account's registered contacts, or by WhatsApp to an unidentified mobile
caller who accepted it, with numbers and deadlines only."""

from __future__ import annotations

import json

from sqlalchemy import select

from integrations.catalog import build_operations
from integrations.messaging.call_summary import CallSummaries
from integrations.messaging.outbox import Outbox
from ivr.config import load_settings
from ivr.engine.operations import OperationRegistry
from ivr.engine.ports import CallSummary, Ticket
from ivr.store.db import Store
from ivr.store.models import OutboxChannel, OutboxMessage
from ivr.store.seed import KNOWN_CALLER
from tests.outbox_support import NOW, PROTOCOL, Caller


def _operations(store: Store) -> tuple[OperationRegistry, CallSummaries]:
    return build_operations(
        store, outbox=Outbox(store, {}, clock=lambda: NOW), settings=load_settings(), clock=lambda: NOW
    )


async def _queued(store: Store) -> list[OutboxMessage]:
    return list(await store.read(lambda s: s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()))


async def test_an_identified_caller_gets_one_summary_by_email_and_whatsapp_with_deadlines(store: Store) -> None:
    registry, summaries = _operations(store)
    caller = Caller(registry)
    await caller.op("customer_by_caller_id")
    complaint = await caller.op("open_ticket", kind="complaint", description="atendimento demorado")
    callback = await caller.op("request_callback", team="billing")
    opened = (Ticket("complaint", complaint.data["number"]), Ticket("callback_request", callback.data["number"]))

    sent_by = await summaries.send(CallSummary(PROTOCOL, caller.customer_id, KNOWN_CALLER, opened, False))

    assert sent_by == ("email", "whatsapp")
    queued = await _queued(store)
    emails = [m for m in queued if m.channel is OutboxChannel.EMAIL]
    assert {m.recipient for m in emails} == {"financeiro@serraazul.com.br", "ti@serraazul.com.br"}
    body = emails[0].body
    assert emails[0].subject == f"Resumo da ligação {PROTOCOL} - American Tower Fibra"
    assert f"Protocolo de atendimento: {PROTOCOL}" in body
    # The regulation's deadline for the complaint: 5 business days after Tuesday 10 March 2026.
    assert f"- Reclamação nº {complaint.data['number']}, prazo 17/03/2026" in body
    assert f"- Pedido de retorno nº {callback.data['number']}\n" in body  # no deadline set: none written
    whatsapp = [m for m in queued if m.channel is OutboxChannel.WHATSAPP]
    assert whatsapp and all(m.template == "sac_resumo" for m in whatsapp)
    when, protocol, written = json.loads(whatsapp[0].body)
    assert (when, protocol) == ("10/03/2026 às 10:00", PROTOCOL)
    assert complaint.data["number"] in written and "Transportes Serra Azul" not in written


async def test_an_unidentified_mobile_caller_gets_it_only_if_accepted_with_no_account_data(store: Store) -> None:
    registry, summaries = _operations(store)
    caller = Caller(registry, "31999990000")
    complaint = await caller.op("open_ticket", kind="complaint", description="cobrança")
    opened = (Ticket("complaint", complaint.data["number"]),)

    assert await summaries.send(CallSummary(PROTOCOL, None, "31999990000", opened, False)) == ()
    assert await _queued(store) == []

    assert await summaries.send(CallSummary(PROTOCOL, None, "31999990000", opened, True)) == ("whatsapp",)
    [message] = await _queued(store)
    assert (message.recipient, message.customer_id) == ("+5531999990000", None)
    assert complaint.data["number"] in message.body


async def test_a_landline_or_withheld_caller_has_no_whatsapp_to_send_it_to(store: Store) -> None:
    _, summaries = _operations(store)
    opened = (Ticket("complaint", "800000001"),)
    for number in ("3130001111", None):
        assert await summaries.send(CallSummary(PROTOCOL, None, number, opened, True)) == ()
    assert await _queued(store) == []
