"""SAS place projection: one row per published practice place, pre-shaped for SAS.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sas_place",
        sa.Column("schedule_id", sa.String(64), primary_key=True),
        sa.Column("idnps", sa.String(64), primary_key=True),
        sa.Column("practitioner_id", sa.String(64), nullable=False),
        sa.Column("role_id", sa.String(64), nullable=False),
        sa.Column("practitioner", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
    )
    op.create_index("ix_sas_place_idnps", "sas_place", ["idnps"])
    op.create_index("ix_sas_place_practitioner", "sas_place", ["practitioner_id"])
    op.create_index("ix_sas_place_role", "sas_place", ["role_id"])
    # Places stored before this revision get their projection now, with the same
    # settings the application shapes them with.
    from app.config import Settings
    from app.sas.place_projection import rebuild

    settings = Settings.from_env()
    rebuild(op.get_bind(), settings.fhir_base_url, settings.local_identifier_system)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE sas_place")


def downgrade() -> None:
    op.drop_table("sas_place")
