"""The drop-off per node rolled up by hour of the calls' start (`drop_off_hours`), and how far each
roll-up is complete (`rollups`): a month's report reads the month's rolled-up hours instead of joining
~800,000 node visits to their calls (bench/console_queries.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drop_off_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_flow", sa.String(length=80), nullable=False),
        sa.Column("flow", sa.String(length=80), nullable=False),
        sa.Column("node", sa.String(length=80), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("hung_up", sa.Integer(), nullable=False),
        sa.Column("input_failed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "call_flow", "flow", "node", name=op.f("pk_drop_off_hours")),
    )
    op.create_table(
        "rollups",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollups")),
    )


def downgrade() -> None:
    op.drop_table("rollups")
    op.drop_table("drop_off_hours")
