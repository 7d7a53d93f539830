"""User accounts (regulators from SAS INT_R02, staff), web sessions, password resets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "user_accounts",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("practitioner_id", sa.String(64), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("family", sa.String(255), nullable=True),
        sa.Column("given", sa.String(255), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("terms_accepted_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("deactivated_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("practitioner_id", name="uq_user_accounts_practitioner_id"),
    )
    op.create_index("ix_user_accounts_email", "user_accounts", ["email"])

    op.create_table(
        "user_sessions",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_pk", PK, sa.ForeignKey("user_accounts.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("from_sas", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
    )
    op.create_index("ix_user_sessions_account", "user_sessions", ["account_pk"])

    op.create_table(
        "password_resets",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_pk", PK, sa.ForeignKey("user_accounts.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_password_resets_token_hash"),
    )
    op.create_index("ix_password_resets_account", "password_resets", ["account_pk"])


def downgrade() -> None:
    for table in ("password_resets", "user_sessions", "user_accounts"):
        op.drop_table(table)
