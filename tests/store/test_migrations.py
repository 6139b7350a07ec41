from __future__ import annotations

from ivr.store.db import Store
from ivr.store.migrate import current_revision, pending_changes, upgrade


async def test_models_match_migrations(store: Store) -> None:
    assert await pending_changes(store) == []


async def test_upgrade_is_idempotent(store: Store) -> None:
    before = await current_revision(store)
    await upgrade(store)
    assert before is not None and await current_revision(store) == before
