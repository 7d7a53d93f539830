"""Extended statistics on the index tables (PostgreSQL).

res_type, param and system (or target_type) are strongly correlated; without these the
planner takes "Practitioner + identifier + IDNPS" for one row and filters national ids
instead of using ix_search_token_code (see bench/README.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE STATISTICS IF NOT EXISTS st_search_token_kind (mcv) "
               "ON res_type, param, system FROM search_token")
    op.execute("CREATE STATISTICS IF NOT EXISTS st_search_reference_kind (mcv) "
               "ON res_type, param, target_type FROM search_reference")
    op.execute("ANALYZE search_token")
    op.execute("ANALYZE search_reference")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS IF EXISTS st_search_token_kind")
    op.execute("DROP STATISTICS IF EXISTS st_search_reference_kind")
