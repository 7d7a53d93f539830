"""Asynchronous bulk loads: the jobs and the parts of their NDJSON bodies.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(512), nullable=False),
        sa.Column("principal", sa.Text),
        sa.Column("address", sa.String(64)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("lines_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("claimed_by", sa.String(160)),
        sa.Column("cancel_requested", sa.Boolean, nullable=False,
                  server_default=sa.text("false")),
        sa.Column("answer_status", sa.Integer),
        sa.Column("answer", sa.Text),
    )
    op.create_index("ix_bulk_jobs_status", "bulk_jobs", ["status", "created_at"])
    op.create_table(
        "bulk_job_parts",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("bulk_jobs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bulk_job_parts")
    op.drop_index("ix_bulk_jobs_status", table_name="bulk_jobs")
    op.drop_table("bulk_jobs")
