"""A whole call: the caller confirms the account, asks for the boleto, and the mail arrives with it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sqlalchemy import select

from ivr.app import build_services
from ivr.clock import ManualClock
from ivr.config import load_settings
from ivr.domain import DocumentKind
from ivr.engine.context import Outcome
from ivr.engine.interpreter import run_call
from ivr.engine.ports import CallInfo
from ivr.engine.scripted import ScriptedChannel
from ivr.flows.loader import parse_flow
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import Customer, Invoice, InvoiceDocument, OutboxMessage, OutboxState
from ivr.store.seed import KNOWN_CALLER, seed
from tests.outbox_support import FAST, NOW

from .conftest import SmtpServer, email_conf

FLOW = """
flow: boleto_by_mail
start: who
nodes:
  who:
    lookup: {operation: customer_by_caller_id, into: me, found: confirm, not_found: agent, error: agent}
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
      error: agent
  send:
    lookup: {operation: send_document, args: {kind: boleto}, into: sent, found: done, not_found: agent, error: agent}
  done:
    hangup: goodbye
  agent:
    queue: {name: billing, no_agents: bye, timeout: bye}
  bye:
    hangup: goodbye
"""


async def test_a_call_asking_for_the_boleto_ends_with_the_mail_delivered(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}",
        var_dir=tmp_path,
        email=email_conf(smtp),
        outbox=FAST,
    )
    store = Store(settings.database_url)
    try:
        await upgrade(store)
        await seed(store, now=NOW)
        latest = await store.read(
            lambda s: s.execute(
                select(Invoice.reference_month, InvoiceDocument.content)
                .join(Invoice.documents)
                .join(Customer)
                .where(Customer.code == "100200", InvoiceDocument.kind == DocumentKind.BOLETO)
                .order_by(Invoice.reference_month.desc())
                .limit(1)
            ).one()
        )
    finally:
        await store.aclose()

    flow = parse_flow(textwrap.dedent(FLOW), tmp_path / "boleto.yaml")
    channel = ScriptedChannel(CallInfo(caller_id=KNOWN_CALLER, dialled="30033336"), ["11222333"])
    async with build_services(settings, clock=ManualClock(NOW)) as services:
        result = await run_call(flow, channel, services, settings=settings)
        received = await smtp.messages(2)

    assert result.outcome is Outcome.ENDED and result.path[-2:] == ["send", "done"]
    assert result.variables["sent"]["month"] == f"{latest.reference_month:%Y-%m}"
    assert {r.rcpt_tos for r in received} == {("financeiro@serraazul.com.br",), ("ti@serraazul.com.br",)}
    for r in received:
        assert r.message["X-SAC-Protocolo"] == result.protocol
        [pdf] = list(r.message.iter_attachments())
        assert pdf.get_content() == latest.content
    store = Store(settings.database_url)
    try:
        states = await store.read(lambda s: set(s.scalars(select(OutboxMessage.state))))
    finally:
        await store.aclose()
    assert states == {OutboxState.SENT}
