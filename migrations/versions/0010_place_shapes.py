"""Practice places in every stored shape: `sas_place.organization_id`, national ids under
FR Core's RPPS system and unprefixed RPPS-rang cabinet ids indexed under their IDNPS/IDNST.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The resource types whose identifiers gained index aliases in this revision.
REINDEXED = ("Practitioner", "PractitionerRole", "Organization", "Location")


def upgrade() -> None:
    op.add_column("sas_place", sa.Column("organization_id", sa.String(64), nullable=True))
    op.create_index("ix_sas_place_organization", "sas_place", ["organization_id"])
    from app.config import Settings
    from app.sas.place_projection import rebuild
    from app.storage.indexer import reindex_all

    settings = Settings.from_env()
    reindex_all(op.get_bind(), default_tz=settings.default_timezone,
                local_base=settings.fhir_base_url, types=REINDEXED)
    # Places stored in shapes the previous rules did not read are published now.
    rebuild(op.get_bind(), settings.fhir_base_url, settings.local_identifier_system)


def downgrade() -> None:
    op.drop_index("ix_sas_place_organization", table_name="sas_place")
    op.drop_column("sas_place", "organization_id")
