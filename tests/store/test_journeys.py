"""The journey operations (integrations/builtin/journeys.py) against the seeded store, called the way the
engine calls them, next to the identifying operations of the built-in adapter."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integrations.accounts import pick_circuit
from integrations.builtin.operations import build_registry
from ivr.domain import TicketKind, TicketState
from ivr.engine.operations import OperationRegistry, OperationStatus
from ivr.protocol_number import make_call_protocol, make_ticket_number
from ivr.store.db import Store
from ivr.store.models import Ticket
from ivr.store.seed import KNOWN_CALLER

from .conftest import NOW, sqlite_url
from .test_builtin import Caller

OUTAGE_TICKET = make_ticket_number(101)  # Serra Azul's open failure ticket on BHZ-FO-10021
IPE_CALLER = "3132221111"  # Comercial Ipê: suspended, two overdue invoices
HOSPITAL_CALLER = "3138210000"


@pytest.fixture
def registry(seeded: Store) -> OperationRegistry:
    return build_registry(seeded, clock=lambda: NOW, timezone="America/Sao_Paulo")


async def _failure_tickets(store: Store) -> int:
    return await store.read(
        lambda s: s.scalar(select(func.count()).where(Ticket.kind == TicketKind.TECHNICAL_FAILURE)) or 0
    )


async def test_callers_join_the_open_outage_ticket_and_never_duplicate_it(
    registry: OperationRegistry, seeded: Store
) -> None:
    before = await _failure_tickets(seeded)
    for call in (18, 19):
        caller = Caller(registry, KNOWN_CALLER, make_call_protocol(2026, call))
        await caller.op("customer_by_caller_id")
        result = await caller.op("attach_to_incident")
        assert result.status is OperationStatus.FOUND
        assert (result.data["number"], result.data["attached"], result.data["ticket_number"]) == (
            OUTAGE_TICKET,
            "existing",
            "",
        )
        assert (result.data["circuit"], result.data["expected_date"]) == ("BHZ-FO-10021", date(2026, 3, 10))
    assert await _failure_tickets(seeded) == before
    description = await seeded.read(
        lambda s: s.scalar(select(Ticket.description).where(Ticket.number == OUTAGE_TICKET))
    )
    assert make_call_protocol(2026, 18) in description and make_call_protocol(2026, 19) in description


async def test_the_first_caller_of_an_outage_without_a_ticket_opens_one(
    registry: OperationRegistry, seeded: Store
) -> None:
    def resolve(session: Session) -> None:
        session.scalars(select(Ticket).where(Ticket.number == OUTAGE_TICKET)).one().state = TicketState.RESOLVED

    await seeded.write(resolve)
    first, second = (Caller(registry, KNOWN_CALLER, make_call_protocol(2026, n)) for n in (30, 31))
    await first.op("customer_by_caller_id")
    opened = (await first.op("attach_to_incident")).data
    assert opened["attached"] == "new" and opened["ticket_number"] == opened["number"] != OUTAGE_TICKET
    await second.op("customer_by_caller_id")
    joined = (await second.op("attach_to_incident")).data
    assert (joined["attached"], joined["number"]) == ("existing", opened["number"])


async def test_no_outage_or_no_caller_means_nothing_to_attach(registry: OperationRegistry) -> None:
    hospital = Caller(registry, HOSPITAL_CALLER)
    await hospital.op("customer_by_caller_id")
    assert (await hospital.op("attach_to_incident")).status is OperationStatus.NOT_FOUND
    assert (await Caller(registry, None).op("attach_to_incident")).status is OperationStatus.NOT_FOUND


async def test_latest_ticket_of_a_kind_is_the_callers_own(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    bgp = await caller.op("latest_ticket", kind="bgp_request")
    assert (bgp.data["number"], bgp.data["state"]) == (make_ticket_number(106), "cancelled")
    hospital = Caller(registry, HOSPITAL_CALLER)
    await hospital.op("customer_by_caller_id")
    assert (await hospital.op("latest_ticket", kind="bgp_request")).status is OperationStatus.NOT_FOUND
    assert (await hospital.op("latest_ticket", kind="teleport")).status is OperationStatus.ERROR
    assert (await Caller(registry, None).op("latest_ticket", kind="bgp_request")).status is OperationStatus.NOT_FOUND


async def test_a_financial_suspension_shows_amounts_only_once_confirmed(registry: OperationRegistry) -> None:
    caller = Caller(registry, IPE_CALLER)
    await caller.op("customer_by_caller_id")
    unconfirmed = (await caller.op("suspension_status")).data
    assert (unconfirmed["cause"], unconfirmed["overdue_count"], unconfirmed["overdue_total"]) == ("financial", 0, "")
    await caller.op("customer_by_cnpj", cnpj="60394672")
    confirmed = (await caller.op("suspension_status")).data
    assert confirmed["cause"] == "financial" and confirmed["overdue_count"] == 2
    assert confirmed["overdue_total"] == Decimal("1780.00")  # two months of 890.00
    assert confirmed["oldest_due_date"] < confirmed["latest_due_date"] < date(2026, 3, 10)


async def test_a_technical_cause_or_none(registry: OperationRegistry) -> None:
    serra = Caller(registry, KNOWN_CALLER)
    await serra.op("customer_by_caller_id")
    data = (await serra.op("suspension_status")).data
    assert (data["cause"], data["incident_circuit"]) == ("technical", "BHZ-FO-10021")
    hospital = Caller(registry, HOSPITAL_CALLER)
    await hospital.op("customer_by_caller_id")
    assert (await hospital.op("suspension_status")).data["cause"] == "none"


async def test_a_store_outage_is_an_error_result(tmp_path: Path) -> None:
    down = Store(sqlite_url(tmp_path / "missing" / "ivr.sqlite3"))
    try:
        registry = build_registry(down, clock=lambda: NOW, timezone="America/Sao_Paulo")
        result = await Caller(registry, KNOWN_CALLER).op("latest_ticket", kind="bgp_request")
        assert result.status is OperationStatus.NOT_FOUND  # no caller identified: nothing is read
        caller = Caller(registry, KNOWN_CALLER)
        caller.customer_id = 1
        assert (await caller.op("suspension_status")).status is OperationStatus.ERROR
    finally:
        await down.aclose()


@pytest.mark.parametrize(
    ("said", "expected"),
    [("2", "CTG-FO-10022"), ("ctg fo 10022", "CTG-FO-10022"), ("10021", "BHZ-FO-10021"), ("1002", None),
     ("XPTO 999", None), ("", None)],
)
def test_a_circuit_is_picked_by_position_designation_as_said_or_its_last_digits(
    said: str, expected: str | None
) -> None:
    rows = ["BHZ-FO-10021", "CTG-FO-10022"]
    assert pick_circuit(rows, said, lambda row: row) == expected


async def test_a_known_caller_is_called_back_on_the_number_calling(registry: OperationRegistry, seeded: Store) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    result = await caller.op("request_callback", team="billing")
    assert result.status is OperationStatus.FOUND
    assert (result.data["phone"], result.data["kind"]) == (KNOWN_CALLER, "callback_request")
    row = await seeded.read(lambda s: s.scalars(select(Ticket).where(Ticket.number == result.data["number"])).one())
    assert (row.callback_number, row.call_protocol) == (KNOWN_CALLER, caller.protocol)
    assert "equipe financeira" in row.description


async def test_a_withheld_caller_is_called_back_only_on_a_number_given(registry: OperationRegistry) -> None:
    caller = Caller(registry, None)
    assert (await caller.op("request_callback", team="technical")).status is OperationStatus.NOT_FOUND
    given = await caller.op("request_callback", team="technical", phone="31988776655")
    assert (given.status, given.data["phone"]) == (OperationStatus.FOUND, "31988776655")


@pytest.mark.parametrize("number", ["08001234567", "30033336", "+14155550100", "123"])
async def test_no_call_back_to_a_number_nobody_can_be_called_back_on(registry: OperationRegistry, number: str) -> None:
    result = await Caller(registry, number).op("request_callback", team="technical")
    assert result.status is OperationStatus.NOT_FOUND


async def test_a_call_back_names_a_team_we_have(registry: OperationRegistry) -> None:
    result = await Caller(registry, KNOWN_CALLER).op("request_callback", team="sales")
    assert result.status is OperationStatus.ERROR


async def test_the_latest_open_ticket_is_the_callers_newest_still_worked_on(registry: OperationRegistry) -> None:
    caller = Caller(registry, KNOWN_CALLER)
    await caller.op("customer_by_caller_id")
    await caller.op("request_callback", team="technical")  # a call back is not what the caller calls about
    found = await caller.op("latest_open_ticket")
    assert found.status is OperationStatus.FOUND
    assert found.data["state"] in ("open", "in_progress", "waiting_customer")
    assert found.data["kind"] != "callback_request"
    hospital = Caller(registry, HOSPITAL_CALLER)  # its only ticket is resolved
    await hospital.op("customer_by_caller_id")
    assert (await hospital.op("latest_open_ticket")).status is OperationStatus.NOT_FOUND
