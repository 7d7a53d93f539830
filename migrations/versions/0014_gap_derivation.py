"""GAP: the queue of Schedules whose rule-derived slots the worker brings in line.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gap_derivation",
        sa.Column("schedule_id", sa.String(64), primary_key=True),
        sa.Column("due_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_gap_derivation_due", "gap_derivation", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_gap_derivation_due", table_name="gap_derivation")
    op.drop_table("gap_derivation")
