"""GAP search parameters of Appointment (created, description, priority, supporting-info,
start): the Appointments already stored are indexed for them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from app.config import Settings
    from app.storage.indexer import reindex_all

    settings = Settings.from_env()
    reindex_all(op.get_bind(), default_tz=settings.default_timezone,
                local_base=settings.fhir_base_url, types=("Appointment",))


def downgrade() -> None:
    pass  # the extra index rows are harmless to the previous revision
