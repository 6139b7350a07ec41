"""Alembic migrations run from Python: `upgrade`, and `pending_changes` (models vs. migrations)."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
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
    await store.run_with_connection(lambda connection: _migrate(connection, revision))


def _migrate(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def new_sqlite_store(path: Path) -> str:
    """A new SQLite database at `path` (which must not exist) with the current schema; returns its URL.

    For the short-lived stores of flow tests, simulations and impact replays: migrating an empty SQLite
    file costs 50-100 ms (each DDL statement makes SQLite re-read its whole schema), so it is done once per
    process and copied (~1 ms). The copy is created 0600, as `Store` makes a database file.
    """
    template = await asyncio.to_thread(_schema_template)
    with os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as target:
        with template.open("rb") as source:
            shutil.copyfileobj(source, target)
    return f"sqlite+aiosqlite:///{path}"


_template_turn = threading.Lock()  # threads, not the event loop: callers may run on different loops
_template: Path | None = None


def _schema_template() -> Path:
    """This process's migrated empty SQLite file, made at the first call and removed at exit."""
    global _template
    with _template_turn:
        if _template is None:
            directory = Path(tempfile.mkdtemp(prefix="ivr-schema-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            file = directory / "schema.sqlite3"
            engine = create_engine(f"sqlite:///{file}")
            try:
                with engine.begin() as connection:
                    _migrate(connection, "head")
                with engine.connect() as connection:
                    # As `Store` leaves a file (the mode is kept in it): a copy opened while another
                    # process holds the write lock could not switch to WAL then.
                    connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            finally:
                engine.dispose()
            _template = file
        return _template


async def pending_changes(store: Store) -> list[Any]:
    """What autogenerate would add to a new migration; empty when models and migrations agree."""

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    return await store.run_with_connection(diff)


async def current_revision(store: Store) -> str | None:
    return await store.run_with_connection(lambda c: MigrationContext.configure(c).get_current_revision())
