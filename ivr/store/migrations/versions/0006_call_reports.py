"""Calls listed and reported (`ivr calls`, `ivr report`): the customer a call was identified as, and an
index on the calls' start, which every listing and report reads a span of.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("customer_name", sa.String(length=200), nullable=False, server_default=""))
    op.create_index("ix_calls_started_at", "calls", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_started_at", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("customer_name")
        batch.drop_column("customer_id")
