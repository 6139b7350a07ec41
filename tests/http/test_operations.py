"""The HTTP adapter gives flows the same operations, rules and results as the built-in one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from integrations.backend import Backend
from ivr.engine.operations import OperationRegistry, OperationResult, OperationStatus
from ivr.protocol_number import make_call_protocol

from .carrier_fake import KNOWN_CALLER, PROTOCOL, SHARED_CALLER, TICKET, CarrierFake
from .conftest import Caller


def assert_declared_fields(registry: OperationRegistry, name: str, result: OperationResult) -> None:
    spec = registry.get(name)
    assert spec is not None and result.status is OperationStatus.FOUND, result
    assert set(result.data) == set(spec.results)


async def test_same_operations_as_the_builtin_adapters(registry: OperationRegistry) -> None:
    assert list(registry) == list(OperationRegistry.declared(Backend))


async def test_caller_id_identifies_and_the_cnpj_root_confirms(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    found = await caller.op("customer_by_caller_id")
    assert_declared_fields(registry, "customer_by_caller_id", found)
    assert found.data["customer_id"] == 1 and found.data["confirmed"] is False
    assert found.data["customer_name"] == "Padaria Pão Quente Ltda" and found.data["circuit_count"] == 2
    assert (await caller.op("invoice_summary")).status is OperationStatus.NOT_FOUND  # not confirmed yet
    confirmed = await caller.op("customer_by_cnpj", cnpj="11.222.333")
    assert confirmed.data["confirmed"] is True
    summary = await caller.op("invoice_summary")
    assert_declared_fields(registry, "invoice_summary", summary)
    assert summary.data["overdue_count"] == 1 and summary.data["overdue_total"] == Decimal("1000.00")
    assert summary.data["next_due_date"] == date(2026, 12, 10)
    assert summary.data["latest_month"] == date(2026, 11, 1)
    assert summary.data["latest_partial_total"] == Decimal("50.00")
    assert summary.data["latest_discount_total"] == Decimal("100.00")


async def test_cnpj_keyed_twice_confirms_nothing_but_cnpj_plus_code_does(registry: OperationRegistry) -> None:
    caller = Caller(registry, None)
    assert (await caller.op("customer_by_cnpj", cnpj="11.444.777/0001-61")).data["confirmed"] is False
    assert (await caller.op("customer_by_cnpj", cnpj="11444777000161")).data["confirmed"] is False
    assert (await caller.op("customer_by_code", code="100-300")).data["confirmed"] is True


async def test_a_shared_withheld_or_foreign_number_identifies_nobody(registry: OperationRegistry) -> None:
    for number in (SHARED_CALLER, None, "+4930123456"):
        result = await Caller(registry, number).op("customer_by_caller_id")
        assert result.status is OperationStatus.NOT_FOUND


async def test_ticket_status_by_number_or_protocol_only_on_the_callers_account(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    by_number = await caller.op("ticket_status", number=TICKET)
    assert_declared_fields(registry, "ticket_status", by_number)
    assert by_number.data["state"] == "in_progress" and by_number.data["opened_on"] == date(2026, 11, 23)
    by_protocol = await caller.op("ticket_status", number=PROTOCOL)
    assert by_protocol.data["number"] == TICKET
    stranger = Caller(registry, None)
    await stranger.op("customer_by_cnpj", cnpj="12345678000195")
    assert (await stranger.op("ticket_status", number=TICKET)).status is OperationStatus.NOT_FOUND


async def test_a_ticket_missing_in_the_back_end_is_not_found(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    result = await caller.op("ticket_status", number="800000021")
    assert result.status is OperationStatus.NOT_FOUND


async def test_open_ticket_on_a_circuit_by_position(registry: OperationRegistry, carrier: CarrierFake) -> None:
    caller = Caller(registry, KNOWN_CALLER, protocol=make_call_protocol(2026, 7))
    await caller.op("customer_by_caller_id")
    opened = await caller.op("open_ticket", kind="technical_failure", circuit="2", symptom="slow")
    assert_declared_fields(registry, "open_ticket", opened)
    assert opened.data["ticket_kind"] == "technical_failure" and opened.data["expected_date"] == date(2026, 11, 26)
    path, headers, body = carrier.posts[-1]
    assert path == "/tickets" and body["circuit"] == "BHZ-0002-FO"  # sorted by designation: 2nd
    assert headers["Idempotency-Key"].startswith("sac-ivr-")
    assert (await caller.op("open_ticket", kind="technical_failure", circuit="9")).status is OperationStatus.NOT_FOUND
    assert (await caller.op("open_ticket", kind="cancellation")).data == {}  # needs a confirmed account


async def test_circuits_incidents_and_leads(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    circuits = await caller.op("circuits")
    assert_declared_fields(registry, "circuits", circuits)
    assert circuits.data["designation_1"] == "BHZ-0001-FO" and circuits.data["address_1"] == "Rua A, 10, Belo Horizonte"
    incidents = await caller.op("open_incidents")
    assert_declared_fields(registry, "open_incidents", incidents)
    assert incidents.data["circuit"] == "BHZ-0001-FO" and incidents.data["expected_time"] == "18:00"
    assert incidents.data["maintenance_date"] == date(2026, 11, 27) and incidents.data["maintenance_start"] == "01:00"
    lead = await Caller(registry, "(31) 98888-7777").op("register_lead", name=" Ana ")
    assert_declared_fields(registry, "register_lead", lead)
    assert lead.data["phone"] == "31988887777"


async def test_latest_ticket_of_a_kind(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    latest = await caller.op("latest_ticket", kind="technical_failure")
    assert_declared_fields(registry, "latest_ticket", latest)
    assert latest.data["number"] == TICKET and latest.data["expected_date"] == date(2026, 11, 26)
    assert (await caller.op("latest_ticket", kind="bgp_request")).status is OperationStatus.NOT_FOUND
    assert (await caller.op("latest_ticket", kind="bgp")).status is OperationStatus.ERROR


async def test_callers_join_the_open_ticket_of_a_known_outage(
    registry: OperationRegistry, carrier: CarrierFake
) -> None:
    first = Caller(registry, KNOWN_CALLER, protocol=make_call_protocol(2026, 21))
    await first.op("customer_by_caller_id")
    joined = await first.op("attach_to_incident")
    assert_declared_fields(registry, "attach_to_incident", joined)
    assert (joined.data["number"], joined.data["attached"], joined.data["ticket_number"]) == (TICKET, "existing", "")
    assert joined.data["expected_date"] == date(2026, 11, 25)
    carrier.tickets[TICKET]["state"] = "resolved"  # that ticket was closed: the next caller opens one
    second = Caller(registry, KNOWN_CALLER, protocol=make_call_protocol(2026, 22))
    await second.op("customer_by_caller_id")
    opened = await second.op("attach_to_incident")
    assert opened.data["attached"] == "new" and opened.data["ticket_number"] == opened.data["number"] != TICKET
    third = Caller(registry, KNOWN_CALLER, protocol=make_call_protocol(2026, 23))
    await third.op("customer_by_caller_id")
    assert (await third.op("attach_to_incident")).data["number"] == opened.data["number"]
    assert carrier.hits["POST /tickets"] == 1
    assert [(incident, call) for incident, _, call in carrier.attached] == [
        (5, make_call_protocol(2026, n)) for n in (21, 22, 23)
    ]
    no_outage = Caller(registry, None)
    await no_outage.op("customer_by_cnpj", cnpj="12345678000195")
    assert (await no_outage.op("attach_to_incident")).status is OperationStatus.NOT_FOUND


async def test_suspension_amounts_only_once_confirmed(registry: OperationRegistry) -> None:
    caller = Caller(registry, None)
    await caller.op("customer_by_cnpj", cnpj="11444777000161")
    unconfirmed = await caller.op("suspension_status")
    assert_declared_fields(registry, "suspension_status", unconfirmed)
    assert unconfirmed.data["cause"] == "financial" and unconfirmed.data["overdue_total"] == ""
    await caller.op("customer_by_code", code="100300")
    confirmed = await caller.op("suspension_status")
    assert confirmed.data["overdue_count"] == 2 and confirmed.data["overdue_total"] == Decimal("600.00")
    assert confirmed.data["oldest_due_date"] == date(2026, 10, 5)
    active = Caller(registry, KNOWN_CALLER)
    await active.op("customer_by_caller_id")
    technical = await active.op("suspension_status")
    assert (technical.data["cause"], technical.data["incident_circuit"]) == ("technical", "BHZ-0001-FO")


async def test_an_unknown_caller_is_refused_without_a_request_to_the_carrier(
    registry: OperationRegistry, carrier: CarrierFake
) -> None:
    anonymous = Caller(registry, None)
    for spec in registry:
        if spec.requires is not None:
            arguments = {arg.name: "bgp_request" if arg.name == "kind" else "800001028" for arg in spec.args}
            assert (await anonymous.op(spec.name, **arguments)).status is OperationStatus.NOT_FOUND, spec.name
    assert sum(carrier.hits.values()) == 0
