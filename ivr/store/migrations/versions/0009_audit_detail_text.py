"""An audit row's detail is text of any length: an edit of a flow in the console keeps its whole unified diff.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_audit") as batch:
        batch.alter_column("detail", existing_type=sa.String(length=500), type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("web_audit") as batch:
        batch.alter_column("detail", existing_type=sa.Text(), type_=sa.String(length=500), existing_nullable=False)
