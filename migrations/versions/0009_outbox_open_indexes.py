"""Partial indexes over the open outbox rows, so that claiming stays cheap however many
delivered rows the outbox keeps (see bench/NOTIFICATIONS.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CLAIMABLE = "status IN ('pending', 'delivering')"
OPEN = "status IN ('pending', 'delivering', 'parked')"


def upgrade() -> None:
    op.create_index("ix_outbox_claimable", "outbox", ["pk"],
                    postgresql_where=sa.text(CLAIMABLE), sqlite_where=sa.text(CLAIMABLE))
    op.create_index("ix_outbox_open_key", "outbox", ["ordering_key", "pk"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index("ix_outbox_open_key", table_name="outbox")
    op.drop_index("ix_outbox_claimable", table_name="outbox")
