"""`ivr call` finds the call it placed in the store by caller and time, and says what happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivr.asterisk.report import find_call
from ivr.domain import TicketKind
from ivr.store.db import Store
from ivr.store.migrate import upgrade
from ivr.store.models import Call, NodeVisit, Ticket

PLACED = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = Store(f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}")
    await upgrade(db)
    yield db
    await db.aclose()


def _call(protocol: str, caller: str | None, started: datetime, outcome: str = "queue:billing") -> Call:
    return Call(
        protocol=protocol, caller_id=caller, linked_id=f"sac-ivr-{protocol}", flow="sac", flow_version="v1",
        started_at=started, ended_at=started + timedelta(seconds=30) if outcome else None, outcome=outcome,
        variables={},
    )  # fmt: skip


def _visit(protocol: str, flow: str, node: str, second: int) -> NodeVisit:
    return NodeVisit(
        call_protocol=protocol, flow=flow, flow_version="v1", node=node, verb="menu", outcome="1",
        started_at=PLACED + timedelta(seconds=second), duration_ms=10,
    )  # fmt: skip


async def test_the_call_placed_from_that_number_is_reported_with_its_path_and_tickets(store: Store) -> None:
    def fill(session):  # type: ignore[no-untyped-def]
        session.add_all([
            _call("202600000014", "3133334444", PLACED - timedelta(minutes=5)),  # an earlier call
            _call("202600000022", "31999990000", PLACED + timedelta(seconds=1)),  # someone else
            _call("202600000030", "3133334444", PLACED + timedelta(seconds=1), outcome="ended"),
            _visit("202600000030", "sac", "main_menu", 1),
            _visit("202600000030", "identify", "ask_cnpj", 2),
            _visit("202600000030", "sac", "goodbye", 3),
            Ticket(number="800010019", kind=TicketKind.TECHNICAL_FAILURE, call_protocol="202600000030",
                   created_at=PLACED, updated_at=PLACED),
        ])  # fmt: skip

    await store.write(fill)
    report = await find_call(store, "(31) 3333-4444", PLACED, wait_s=0)

    assert report is not None
    assert report.protocol == "202600000030" and report.outcome == "ended"
    assert report.path == ["main_menu", "identify/ask_cnpj", "goodbye"]
    text = report.render()
    assert "800010019 (technical_failure)" in text and "main_menu > identify/ask_cnpj > goodbye" in text


async def test_a_call_still_running_or_not_stored_is_said_so(store: Store) -> None:
    await store.write(lambda session: session.add(_call("202600000014", None, PLACED, outcome="")))

    running = await find_call(store, None, PLACED, wait_s=0.3)  # withheld caller ID
    assert running is not None and running.outcome == ""
    assert "not recorded" in running.render() and "none opened" in running.render()
    assert await find_call(store, "3133334444", PLACED, wait_s=0) is None
