from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr.store.db import Store
from ivr.store.migrate import current_revision, new_sqlite_store, pending_changes, upgrade
from ivr.store.models import Lead
from tests.scale.migrations import revisions

from .conftest import NOW


async def test_models_match_migrations(store: Store) -> None:
    assert await pending_changes(store) == []


async def test_upgrade_is_idempotent(store: Store) -> None:
    before = await current_revision(store)
    await upgrade(store)
    assert before is not None and await current_revision(store) == before


async def test_a_new_sqlite_store_is_current_private_and_its_own(tmp_path: Path) -> None:
    """The flow tests' stores are copies of one migrated file: each at the head revision, 0600 like any
    database file, and independent of the others."""
    first = Store(await new_sqlite_store(tmp_path / "a.sqlite3"))
    second = Store(await new_sqlite_store(tmp_path / "b.sqlite3"))
    try:
        assert await current_revision(first) == revisions()[-1] and await pending_changes(first) == []
        await first.write(lambda s: s.add(Lead(name="only in a", phone="3133334444", created_at=NOW)))
        leads = [await db.read(lambda s: s.scalar(select(func.count()).select_from(Lead))) for db in (first, second)]
        assert leads == [1, 0]
    finally:
        await first.aclose()
        await second.aclose()
    assert stat.S_IMODE((tmp_path / "a.sqlite3").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        await new_sqlite_store(tmp_path / "a.sqlite3")  # never over an existing database
