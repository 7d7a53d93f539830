"""Operations: delivery worker heartbeats (/readyz) and the SLA page's metric samples.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(160), primary_key=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("beat_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_worker_heartbeats_beat", "worker_heartbeats", ["beat_at"])
    op.create_table(
        "metric_samples",
        sa.Column("host", sa.String(160), primary_key=True),
        sa.Column("taken_at", sa.DateTime, primary_key=True),
        sa.Column("sample", sa.Text, nullable=False),
    )
    op.create_index("ix_metric_samples_taken", "metric_samples", ["taken_at"])


def downgrade() -> None:
    op.drop_index("ix_metric_samples_taken", table_name="metric_samples")
    op.drop_table("metric_samples")
    op.drop_index("ix_worker_heartbeats_beat", table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
