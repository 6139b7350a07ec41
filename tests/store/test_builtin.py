"""The built-in operations against the seeded store, called the way the engine calls them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from integrations.backend import Backend
from integrations.builtin.deadlines import add_days, deadlines
from integrations.builtin.operations import build_registry
from ivr.config import Deadline, DeadlineSettings, ServicePage
from ivr.domain import TicketKind
from ivr.engine.operations import OperationContext, OperationRegistry, OperationResult, OperationStatus
from ivr.protocol_number import NumberKind, kind_of, make_call_protocol, make_ticket_number
from ivr.store.db import Store
from ivr.store.models import Lead, Ticket
from ivr.store.seed import KNOWN_CALLER, SHARED_CALLER
from tests.engine.fakes import run, services

from .conftest import NOW, sqlite_url

SERRA_AZUL_TICKET = make_ticket_number(101)
HOSPITAL_TICKET = make_ticket_number(201)


class Caller:
    """One call's view of the registry, keeping identity as ivr.engine.context.CallContext does."""

    def __init__(
        self, registry: OperationRegistry, caller_id: str | None, protocol: str = make_call_protocol(2026, 18)
    ) -> None:
        self.registry, self.caller_id, self.protocol = registry, caller_id, protocol
        self.customer_id: int | None = None
        self.confirmed = False

    async def op(self, name: str, /, **args: Any) -> OperationResult:
        ctx = OperationContext(self.protocol, self.caller_id, self.customer_id, self.confirmed)
        result = await self.registry.call(name, args, ctx)
        spec = self.registry.get(name)
        if result.status is OperationStatus.FOUND and spec and spec.identifies:
            self.customer_id = int(result.data["customer_id"])
            self.confirmed = self.confirmed or bool(result.data["confirmed"])
        if result.status is OperationStatus.FOUND:
            assert set(result.data) == set(spec.results), name
            assert all(isinstance(v, str | int | Decimal | date) for v in result.data.values()), result.data
        return result


@pytest.fixture
def registry(seeded: Store) -> OperationRegistry:
    return build_registry(seeded, clock=lambda: NOW, timezone="America/Sao_Paulo")


async def test_known_caller_is_identified_but_not_confirmed_by_caller_id(registry: OperationRegistry) -> None:
    caller = Caller(registry, "+55 (31) 3333-4444")
    result = await caller.op("customer_by_caller_id")
    assert result.status is OperationStatus.FOUND
    assert result.data["customer_name"] == "Transportes Serra Azul Ltda"
    assert (result.data["confirmed"], result.data["circuit_count"], result.data["account_status"]) == (
        False,
        2,
        "active",
    )


@pytest.mark.parametrize("caller_id", [None, "anonymous", "3199990000", SHARED_CALLER])
async def test_withheld_unknown_or_shared_numbers_are_not_found(
    registry: OperationRegistry, caller_id: str
) -> None:
    assert (await Caller(registry, caller_id).op("customer_by_caller_id")).status is OperationStatus.NOT_FOUND


@pytest.mark.parametrize("confirmation", ["11222333", "11.222.333/0001-81"])
async def test_caller_id_plus_cnpj_or_root_confirms(registry: OperationRegistry, confirmation: str) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    result = await caller.op("customer_by_cnpj", cnpj=confirmation)
    assert result.status is OperationStatus.FOUND and result.data["confirmed"] is True


async def test_cnpj_keyed_twice_confirms_nothing_but_cnpj_plus_code_does(registry: OperationRegistry) -> None:
    caller = Caller(registry, "3199990000")
    assert (await caller.op("customer_by_cnpj", cnpj="11222333000181")).data["confirmed"] is False
    assert (await caller.op("customer_by_cnpj", cnpj="11222333000181")).data["confirmed"] is False
    assert (await caller.op("invoice_summary")).status is OperationStatus.NOT_FOUND
    assert (await caller.op("customer_by_code", code="100200")).data["confirmed"] is True
    assert (await caller.op("invoice_summary")).status is OperationStatus.FOUND


async def test_alphanumeric_cnpj_identifies_its_account(registry: OperationRegistry) -> None:
    result = await Caller(registry, None).op("customer_by_cnpj", cnpj="12.abc.345/01de-35")
    assert (
        result.status is OperationStatus.FOUND
        and result.data["customer_name"] == "Nova Fibra Tecnologia Ltda"
    )


@pytest.mark.parametrize("value", ["11222333000182", "123", "99999999"])
async def test_invalid_or_unknown_cnpj_is_not_found(registry: OperationRegistry, value: str) -> None:
    assert (
        await Caller(registry, None).op("customer_by_cnpj", cnpj=value)
    ).status is OperationStatus.NOT_FOUND


async def confirmed_serra_azul(registry: OperationRegistry) -> Caller:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    await caller.op("customer_by_cnpj", cnpj="11222333")
    assert caller.confirmed
    return caller


async def test_invoice_summary_of_a_confirmed_account(registry: OperationRegistry) -> None:
    data = (await (await confirmed_serra_azul(registry)).op("invoice_summary")).data
    assert (data["open_count"], data["overdue_count"]) == (1, 1)
    assert data["overdue_total"] == Decimal("4730.00")  # 2890 + 1990 - 150 discount
    assert (data["next_due_date"], data["next_due_amount"]) == (date(2026, 4, 10), Decimal("4880.00"))
    assert data["latest_month"] == date(2026, 3, 1)


async def test_partial_and_discount_lines_are_reported(registry: OperationRegistry) -> None:
    caller = Caller(registry, "11987654321")
    await caller.op("customer_by_caller_id")
    await caller.op("customer_by_code", code="300400")
    data = (await caller.op("invoice_summary")).data
    assert data["latest_discount_total"] == Decimal("87.50") and data["latest_amount"] == Decimal("1662.50")


async def test_confirmation_of_one_account_does_not_open_another(registry: OperationRegistry) -> None:
    caller = await confirmed_serra_azul(registry)
    await caller.op("customer_by_cnpj", cnpj="45263816000146")  # now speaking about the hospital
    assert caller.customer_id != 1 and caller.confirmed  # the engine keeps its flag...
    assert (await caller.op("invoice_summary")).status is OperationStatus.NOT_FOUND  # ...amounts stay closed
    result = await caller.op("open_ticket", kind="boleto_copy")
    assert result.status is OperationStatus.NOT_FOUND


async def test_ticket_status_by_ticket_number_or_call_protocol(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    by_number = await caller.op("ticket_status", number=SERRA_AZUL_TICKET)
    assert (by_number.data["state"], by_number.data["kind"], by_number.data["circuit"]) == (
        "open",
        "technical_failure",
        "BHZ-FO-10021",
    )
    by_protocol = await caller.op("ticket_status", number=make_call_protocol(2025, 9_101))
    assert by_protocol.data["number"] == SERRA_AZUL_TICKET


async def test_a_ticket_without_a_circuit_is_said_without_one(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    opened = await caller.op("open_ticket", kind="billing_doubt", description="cobrança em dobro")
    for status in (
        await caller.op("ticket_status", number=opened.data["number"]),
        await caller.op("latest_ticket", kind="billing_doubt"),
    ):
        assert (status.data["number"], status.data["kind"], status.data["circuit"]) == (
            opened.data["number"],
            "billing_doubt",
            "",
        )


@pytest.mark.parametrize("number", [HOSPITAL_TICKET, make_call_protocol(2025, 9_201), "800001011", "12"])
async def test_ticket_status_never_shows_another_customers_ticket(
    registry: OperationRegistry, number: str
) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    assert (await caller.op("ticket_status", number=number)).status is OperationStatus.NOT_FOUND


async def test_ticket_status_needs_an_identified_caller(registry: OperationRegistry) -> None:
    result = await Caller(registry, None).op("ticket_status", number=SERRA_AZUL_TICKET)
    assert result.status is OperationStatus.NOT_FOUND


async def test_open_ticket_links_the_call_and_can_be_followed(
    registry: OperationRegistry, seeded: Store
) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    opened = await caller.op(
        "open_ticket", kind="technical_failure", circuit="1", symptom="no_connection", description="sem sinal"
    )
    assert opened.status is OperationStatus.FOUND and kind_of(opened.data["number"]) is NumberKind.TICKET
    assert opened.data["number"] == make_ticket_number(1_001)  # after the seed's block
    # No deadline is set for failures, but the circuit has a known outage: its forecast (today) is said.
    assert opened.data["expected_date"] == date(2026, 3, 10)
    status = await caller.op("ticket_status", number=caller.protocol)
    assert (status.data["number"], status.data["state"], status.data["circuit"]) == (
        opened.data["number"],
        "open",
        "BHZ-FO-10021",
    )
    row = await seeded.read(
        lambda s: s.scalars(select(Ticket).where(Ticket.number == opened.data["number"])).one()
    )
    assert (row.call_protocol, row.symptom, row.description) == (
        caller.protocol,
        "no_connection",
        "sem sinal",
    )


async def test_a_deadline_the_operator_sets_dates_the_tickets_of_its_kind(seeded: Store) -> None:
    configured = DeadlineSettings(technical_failure=Deadline(days=1, business=False))
    registry = build_registry(
        seeded, deadlines=deadlines(ServicePage(), configured), clock=lambda: NOW, timezone="America/Sao_Paulo"
    )
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    opened = await caller.op("open_ticket", kind="technical_failure", circuit="1")
    assert opened.data["expected_date"] == date(2026, 3, 11)


def test_every_kind_of_ticket_has_its_deadline_or_none() -> None:
    assert set(deadlines(ServicePage(), DeadlineSettings())) == set(TicketKind)


async def test_document_copies_need_confirmation_and_take_business_days(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    assert (await caller.op("open_ticket", kind="boleto_copy")).status is OperationStatus.NOT_FOUND
    caller = await confirmed_serra_azul(registry)
    copy = await caller.op("open_ticket", kind="nota_fiscal_copy")
    assert copy.data["expected_date"] == date(2026, 3, 13)  # 3 business days after Tuesday the 10th
    dispute = await caller.op("open_ticket", kind="billing_dispute")
    assert dispute.data["expected_date"] == date(2026, 3, 20)  # 10 calendar days


async def test_open_ticket_rejects_unknown_kinds_and_foreign_circuits(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    assert (await caller.op("open_ticket", kind="teleport")).status is OperationStatus.ERROR
    foreign = await caller.op("open_ticket", kind="technical_failure", circuit="IPA-FO-20031")
    assert foreign.status is OperationStatus.NOT_FOUND
    assert (
        await caller.op("open_ticket", kind="service_request", circuit="7")
    ).status is OperationStatus.NOT_FOUND


async def test_a_caller_who_is_not_a_customer_may_complain_but_not_cancel(
    registry: OperationRegistry,
) -> None:
    caller = Caller(registry, None)
    assert (
        await caller.op("open_ticket", kind="complaint", description="demora")
    ).status is OperationStatus.FOUND
    assert (await caller.op("open_ticket", kind="cancellation")).status is OperationStatus.NOT_FOUND


async def test_circuits_and_open_incidents_of_the_known_caller(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    circuits = (await caller.op("circuits")).data
    assert (
        circuits["count"],
        circuits["designation_1"],
        circuits["designation_2"],
        circuits["designation_3"],
    ) == (2, "BHZ-FO-10021", "CTG-FO-10022", "")
    assert circuits["address_1"].startswith("Av. Afonso Pena, 1500")
    incidents = (await caller.op("open_incidents")).data
    assert (incidents["count"], incidents["circuit"], incidents["expected_time"]) == (
        1,
        "BHZ-FO-10021",
        "14:00",
    )
    assert (
        incidents["maintenance_count"],
        incidents["maintenance_circuit"],
        incidents["maintenance_date"],
    ) == (1, "CTG-FO-10022", date(2026, 3, 12))
    assert (incidents["maintenance_start"], incidents["maintenance_end"]) == ("00:00", "04:00")


async def test_no_incident_is_not_found_and_anonymous_callers_see_nothing(
    registry: OperationRegistry,
) -> None:
    hospital = Caller(registry, "3138210000")
    await hospital.op("customer_by_caller_id")
    assert (await hospital.op("open_incidents")).status is OperationStatus.NOT_FOUND
    for name in ("circuits", "open_incidents", "invoice_summary"):
        assert (await Caller(registry, None).op(name)).status is OperationStatus.NOT_FOUND


async def test_register_lead_defaults_to_the_callers_number(
    registry: OperationRegistry, seeded: Store
) -> None:
    result = await Caller(registry, "+55 11 98765-0000").op("register_lead", name="Ana")
    assert result.data["phone"] == "11987650000"
    other = await Caller(registry, None).op("register_lead", phone="(21) 3333-2222")
    assert other.data["phone"] == "2133332222"
    assert (await Caller(registry, None).op("register_lead")).status is OperationStatus.NOT_FOUND
    leads = await seeded.read(
        lambda s: [(lead.name, lead.phone) for lead in s.scalars(select(Lead).order_by(Lead.id))]
    )
    assert leads == [("Ana", "11987650000"), ("", "2133332222")]


NUMBERS_TO_CALL = """
flow: lead
start: lead
nodes:
  lead:
    action: {operation: register_lead, args: {name: Ana}, into: lead, error: bye}
    next: back
  back:
    action: {operation: request_callback, args: {team: commercial}, into: asked, error: bye}
    next: bye
  bye:
    hangup: goodbye
"""


async def test_the_numbers_to_call_back_are_kept_masked_in_the_calls_record(registry: OperationRegistry) -> None:
    result, _, svc = await run(NUMBERS_TO_CALL, number="11987650000", svc=services(operations=registry))
    assert result.path == ["lead", "back", "bye"]
    assert (result.variables["lead"]["phone"], result.variables["asked"]["callback_number"]) == ("11987650000",) * 2
    [(_, _, recorded)] = svc.calls.ended
    assert recorded["lead"]["phone"] == recorded["asked"]["phone"] == recorded["asked"]["callback_number"] == (
        "11*******00"
    )
    assert "11987650000" not in repr(recorded)


async def test_a_store_outage_is_an_error_result(tmp_path: Path) -> None:
    down = Store(sqlite_url(tmp_path / "missing" / "ivr.sqlite3"))
    try:
        registry = build_registry(down, clock=lambda: NOW, timezone="America/Sao_Paulo")
        result = await Caller(registry, KNOWN_CALLER).op("customer_by_caller_id")
        assert result.status is OperationStatus.ERROR and "store" in result.message
    finally:
        await down.aclose()


async def test_declared_registry_matches_the_bound_one(registry: OperationRegistry) -> None:
    declared = OperationRegistry.declared(Backend)
    assert list(declared) == list(registry)
    assert [s.name for s in declared if s.identifies] == [
        "customer_by_caller_id",
        "customer_by_cnpj",
        "customer_by_code",
    ]
    result = await declared.call(
        "circuits", {}, OperationContext(make_call_protocol(2026, 18), None, 1, True)
    )
    assert result.status is OperationStatus.ERROR


def test_business_day_deadlines_skip_weekends_and_national_holidays() -> None:
    three = Deadline(days=3, business=True)
    assert add_days(date(2026, 4, 2), three) == date(2026, 4, 8)  # Good Friday and the weekend skipped
    assert add_days(date(2026, 4, 2), Deadline(days=3, business=False)) == date(2026, 4, 5)
