"""The prompts a caller heard at each node (`node_visits.prompts`, spelled digits masked), for a call's
trace in `ivr calls show` and the console.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("node_visits") as batch:
        batch.add_column(sa.Column("prompts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_visits") as batch:
        batch.drop_column("prompts")
