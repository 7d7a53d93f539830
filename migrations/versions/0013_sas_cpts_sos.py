"""The CPTS and SOS Médecins offers: `sas_slot.cpts` and `sas_slot.sos`, the `sas_cpts` and
`sas_sos_place` projections, and the Slot search parameter `service-type-reference`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Slots that may name a CPTS offer or carry a CPTS category concept: only those get new
# index rows or a new projection row (the others are unchanged by this revision).
CPTS_SLOTS = ("%extension-Slot.serviceType%", "%TRE_R66-CategorieEtablissement%")


def upgrade() -> None:
    op.add_column("sas_slot", sa.Column("cpts", sa.Text, nullable=True))
    op.add_column("sas_slot", sa.Column("sos", sa.Text, nullable=True))
    op.create_table(
        "sas_cpts",
        sa.Column("healthcareservice_id", sa.String(64), primary_key=True),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("healthcareservice", sa.Text, nullable=False),
        sa.Column("organization", sa.Text, nullable=False),
    )
    op.create_index("ix_sas_cpts_organization", "sas_cpts", ["organization_id"])
    op.create_table(
        "sas_sos_place",
        sa.Column("schedule_id", sa.String(64), primary_key=True),
        sa.Column("siret", sa.String(64), primary_key=True),
        sa.Column("location_id", sa.String(64), nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("organization", sa.Text, nullable=False),
    )
    op.create_index("ix_sas_sos_place_siret", "sas_sos_place", ["siret"])
    op.create_index("ix_sas_sos_place_location", "sas_sos_place", ["location_id"])
    op.create_index("ix_sas_sos_place_organization", "sas_sos_place", ["organization_id"])

    from sqlalchemy import select

    from app.config import Settings
    from app.sas import cpts_projection, slot_projection, sos_projection
    from app.storage.indexer import reindex_all
    from app.storage.schema import sas_sos_place

    settings = Settings.from_env()
    conn = op.get_bind()
    base, tz = settings.fhir_base_url, settings.default_timezone
    reindex_all(conn, default_tz=tz, local_base=base, types=("Slot",), content_like=CPTS_SLOTS)
    cpts_projection.rebuild(conn, base)
    sos_projection.rebuild(conn, base, settings.local_identifier_system)
    slot_projection.rebuild(conn, tz, base, only=CPTS_SLOTS)
    places = set(conn.execute(select(sas_sos_place.c.schedule_id)).scalars())
    sos_projection.refresh_slots(conn, places, tz)
    if conn.dialect.name == "postgresql":
        op.execute("ANALYZE sas_cpts")
        op.execute("ANALYZE sas_sos_place")


def downgrade() -> None:
    op.drop_table("sas_sos_place")
    op.drop_table("sas_cpts")
    op.drop_column("sas_slot", "sos")
    op.drop_column("sas_slot", "cpts")
