"""Whole calls over the shipped flows (flows/sac.yaml), down to what reaches the Cloud API fake."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from ivr.app import build_services
from ivr.clock import ManualClock
from ivr.config import REPO_ROOT, Settings, load_settings
from ivr.engine.interpreter import CallResult, run_call
from ivr.engine.ports import CallInfo
from ivr.engine.scripted import ScriptedChannel
from ivr.flows.loader import flows_beside, load_flow
from ivr.store import boleto
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import InvoiceDocument, OutboxChannel, OutboxMessage, OutboxState
from ivr.store.seed import KNOWN_CALLER, seed
from tests.outbox_support import FAST, NOW

from .conftest import CloudApi, Sent

SAC = load_flow(REPO_ROOT / "flows" / "sac.yaml")
MARTA = "5531988887777"  # Transportes Serra Azul's registered WhatsApp; the caller's line is a landline


async def seeded(tmp_path: Path, cloud: CloudApi) -> Settings:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}",
        var_dir=tmp_path,
        whatsapp=cloud.settings(),
        outbox=FAST,
    )
    store = Store(settings.database_url)
    try:
        await upgrade(store)
        await seed(store, now=NOW)
    finally:
        await store.aclose()
    return settings


async def call(
    settings: Settings, cloud: CloudApi, keys: list[str], expected: int
) -> tuple[CallResult, list[Sent]]:
    """A call from the known caller; returns once `expected` messages reached the fake."""
    channel = ScriptedChannel(CallInfo(caller_id=KNOWN_CALLER, dialled="30033336"), keys)
    async with build_services(settings, clock=ManualClock(NOW)) as services:
        result = await run_call(SAC, channel, services, flows=flows_beside(SAC), settings=settings)
        sent = [await cloud.next() for _ in range(expected)]
    return result, sent


async def whatsapp_rows(settings: Settings) -> list[OutboxMessage]:
    store = Store(settings.database_url)
    try:
        query = select(OutboxMessage).where(OutboxMessage.channel == OutboxChannel.WHATSAPP)
        return await store.read(lambda s: list(s.scalars(query)))
    finally:
        await store.aclose()


async def test_a_known_callers_protocol_reaches_the_registered_whatsapp(
    tmp_path: Path, cloud: CloudApi
) -> None:
    settings = await seeded(tmp_path, cloud)
    result, [sent] = await call(settings, cloud, ["0"], expected=1)

    assert result.target == "technical" and "protocol_sent_both" in result.path
    assert (sent.to, sent.template) == (MARTA, "sac_protocolo")
    assert sent.parameters[0] == "Transportes Serra Azul Ltda" and sent.parameters[2] == result.protocol
    rows = await whatsapp_rows(settings)
    assert [(r.state, r.call_protocol) for r in rows] == [(OutboxState.SENT, result.protocol)]


async def test_a_confirmed_caller_asks_for_the_boletos_digitable_line_on_whatsapp(
    tmp_path: Path, cloud: CloudApi
) -> None:
    settings = await seeded(tmp_path, cloud)
    # 2 billing, CNPJ root confirms, 1 copies, 1 boleto, 1 the latest, 1 its line on WhatsApp, 1 end the call
    result, [protocol, line] = await call(settings, cloud, ["2", "11222333", "1", "1", "1", "1", "1"], expected=2)

    assert "whatsapp_line_sent" in result.path and result.path[-1] == "goodbye"
    assert protocol.template == "sac_protocolo"
    assert (line.to, line.template, line.parameters[1]) == (MARTA, "sac_linha_digitavel", result.protocol)
    store = Store(settings.database_url)
    try:
        lines = await store.read(lambda s: set(s.scalars(select(InvoiceDocument.digitable_line))))
    finally:
        await store.aclose()
    assert line.parameters[4] in {boleto.formatted(digits) for digits in lines if digits}
    assert {r.state for r in await whatsapp_rows(settings)} == {OutboxState.SENT}
