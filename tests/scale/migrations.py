"""Alembic driven one revision at a time (the product only ever upgrades to head)."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from ivr.store.db import Store
from ivr.store.migrate import alembic_config


def revisions() -> list[str]:
    """Every revision, first to head (the history is linear)."""
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


async def migrate(store: Store, revision: str, *, down: bool = False) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    await store.run_with_connection(run)
