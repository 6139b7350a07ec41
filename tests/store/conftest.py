"""A fresh store per test (SQLite; PostgreSQL too where both are tested), migrated, and optionally seeded
at a fixed moment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.store.db import Store
from ivr.store.migrate import new_sqlite_store
from ivr.store.seed import seed

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """For what is about SQLite itself (its locking, its file)."""
    db = Store(await new_sqlite_store(tmp_path / "ivr.sqlite3"), busy_timeout_s=10)
    yield db
    await db.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The embedded default and the scale path: every store test runs on both."""
    if request.param == "sqlite":
        url = await new_sqlite_store(tmp_path / "ivr.sqlite3")
    else:
        url = await request.getfixturevalue("postgres").migrated_database()
    db = Store(url, busy_timeout_s=10)
    yield db
    await db.aclose()


@pytest.fixture
async def seeded(store: Store) -> Store:
    await seed(store, now=NOW)
    return store
