"""Alembic migrations run from Python: `upgrade`, and `pending_changes` (models vs. migrations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from ivr.store.db import Store
from ivr.store.models import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: PostgreSQL advisory lock held by a migration's transaction: units started together (each `ivr serve`
#: upgrades on start) migrate one at a time, the later ones finding the schema current. Without it the
#: second unit's CREATE TABLE failed on the first one's. SQLite's BEGIN IMMEDIATE already serialises them.
_MIGRATION_LOCK = 0x5AC1_0001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the store's schema to `revision` (idempotent)."""

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    await store.run_with_connection(run)


async def pending_changes(store: Store) -> list[Any]:
    """What autogenerate would add to a new migration; empty when models and migrations agree."""

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    return await store.run_with_connection(diff)


async def current_revision(store: Store) -> str | None:
    return await store.run_with_connection(lambda c: MigrationContext.configure(c).get_current_revision())
