"""A migrated store per test (SQLite and PostgreSQL), a call back book on it at a fixed moment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.clock import ManualClock
from ivr.config import CallbackSettings
from ivr.engine.ports import CallbackRequest
from ivr.store.callbacks import StoreCallbackBook
from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo: every team open
ZONE = "America/Sao_Paulo"
#: Short waits: an attempt whose reply is lost is looked for within a second.
CONF = CallbackSettings(ring_s=0.3, lease_s=300.0, spacing_s=600.0, poll_interval_s=0.05)


def request(team: str = "technical", number: str = "31988776655", protocol: str = "202600000017") -> CallbackRequest:
    return CallbackRequest(
        protocol=protocol,
        ticket_number="800000014",
        number=number,
        team=team,
        customer_id=7,
        customer_name="Padaria Pão Quente",
        caller_id="3133334444",
        path="start>main_menu>technical>callback_request",
        tickets="800000013,800000014",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield await new_sqlite_store(tmp_path / "ivr.sqlite3")
    else:
        yield await request.getfixturevalue("postgres").migrated_database()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    db = Store(database_url, busy_timeout_s=10)
    yield db
    await db.aclose()


@pytest.fixture
def book(store: Store, clock: ManualClock) -> StoreCallbackBook:
    return StoreCallbackBook(store, clock=clock, conf=CONF, timezone=ZONE)
