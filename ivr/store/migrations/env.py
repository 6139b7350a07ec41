"""Alembic environment, run programmatically by ivr.store.migrate (there is no alembic.ini).

`ivr.store.migrate` opens the connection (through `Store`, so SQLite gets its write lock) and hands
it over in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from ivr.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `ivr db upgrade` (ivr.store.migrate), not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
