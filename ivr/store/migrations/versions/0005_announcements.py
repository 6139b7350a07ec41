"""Announcements supervisors post for callers to hear after the protocol (`ivr announce`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=400), nullable=False),
        sa.Column(
            "scope_kind",
            sa.Enum("all", "city", "circuit", name="scopekind", native_enum=False, create_constraint=False, length=32),
            nullable=False,
        ),
        sa.Column("scope_value", sa.String(length=120), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audio", sa.String(length=40), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_index("ix_announcements_until", "announcements", ["until"])


def downgrade() -> None:
    op.drop_index("ix_announcements_until", table_name="announcements")
    op.drop_table("announcements")
