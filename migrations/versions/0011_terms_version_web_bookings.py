"""Terms of use accepted by version (`user_accounts.terms_version`), the SSO provider's ID
token of a session (`user_sessions.id_token`, for the logout at the provider), and the
appointments booked on our pages (`web_bookings`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The text accepted before versions were recorded (app/accounts/models.py TERMS_VERSION).
FIRST_TERMS_VERSION = "2026-11"


def upgrade() -> None:
    op.add_column("user_accounts", sa.Column("terms_version", sa.String(32), nullable=True))
    op.execute(sa.text("UPDATE user_accounts SET terms_version = :version "
                       "WHERE terms_accepted_at IS NOT NULL")
               .bindparams(version=FIRST_TERMS_VERSION))
    op.add_column("user_sessions", sa.Column("id_token", sa.Text, nullable=True))
    op.create_table(
        "web_bookings",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("account_pk", PK, sa.ForeignKey("user_accounts.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("appointment_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("appointment_id", name="uq_web_bookings_appointment"),
    )
    op.create_index("ix_web_bookings_account", "web_bookings", ["account_pk", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_web_bookings_account", table_name="web_bookings")
    op.drop_table("web_bookings")
    op.drop_column("user_sessions", "id_token")
    op.drop_column("user_accounts", "terms_version")
