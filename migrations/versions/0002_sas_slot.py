"""SAS slot projection: free, SAS-visible slots pre-shaped as FrSlotAgregateur.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sas_slot",
        sa.Column("slot_pk", PK, sa.ForeignKey("resources.pk", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("slot_id", sa.String(64), nullable=False),
        sa.Column("schedule_id", sa.String(64), nullable=False),
        sa.Column("start", sa.DateTime, nullable=False),
        sa.Column("fragment", sa.Text, nullable=False),
    )
    op.create_index("ix_sas_slot_schedule_start", "sas_slot", ["schedule_id", "start"])
    # Slots stored before this revision get their projection now.
    from app.sas.slot_projection import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("sas_slot")
