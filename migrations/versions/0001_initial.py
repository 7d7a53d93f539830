"""Resources, version history and search index tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _index_columns() -> list[sa.Column]:
    return [
        sa.Column("res_pk", PK, sa.ForeignKey("resources.pk", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.DateTime, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", sa.Text, nullable=True),
        sa.UniqueConstraint("res_type", "res_id", name="uq_resources_type_id"),
    )
    op.create_index("ix_resources_type_updated", "resources", ["res_type", "last_updated"])

    op.create_table(
        "resource_versions",
        sa.Column("res_pk", PK, sa.ForeignKey("resources.pk", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("res_type", sa.String(64), nullable=False),
        sa.Column("res_id", sa.String(64), nullable=False),
        sa.Column("last_updated", sa.DateTime, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("content", sa.Text, nullable=True),
    )
    op.create_index("ix_resource_versions_type_updated", "resource_versions",
                    ["res_type", "last_updated"])

    op.create_table("search_token", *_index_columns(),
                    sa.Column("system", sa.String(255), nullable=True),
                    sa.Column("code", sa.String(255), nullable=True),
                    sa.Column("text", sa.String(255), nullable=True))
    op.create_index("ix_search_token_code", "search_token",
                    ["res_type", "param", "code", "system"])
    op.create_index("ix_search_token_res", "search_token", ["res_pk"])

    op.create_table("search_string", *_index_columns(),
                    sa.Column("value", sa.String(512), nullable=False),
                    sa.Column("exact", sa.String(512), nullable=False))
    op.create_index("ix_search_string_value", "search_string", ["res_type", "param", "value"])
    op.create_index("ix_search_string_res", "search_string", ["res_pk"])

    op.create_table("search_date", *_index_columns(),
                    sa.Column("low", sa.DateTime, nullable=False),
                    sa.Column("high", sa.DateTime, nullable=False))
    op.create_index("ix_search_date_low", "search_date", ["res_type", "param", "low"])
    op.create_index("ix_search_date_high", "search_date", ["res_type", "param", "high"])
    op.create_index("ix_search_date_res", "search_date", ["res_pk", "param"])

    op.create_table("search_reference", *_index_columns(),
                    sa.Column("target_type", sa.String(64), nullable=True),
                    sa.Column("target_id", sa.String(64), nullable=True),
                    sa.Column("url", sa.String(1024), nullable=True))
    op.create_index("ix_search_reference_target", "search_reference",
                    ["res_type", "param", "target_id", "target_type"])
    op.create_index("ix_search_reference_res", "search_reference", ["res_pk", "param"])
    op.create_index("ix_search_reference_inbound", "search_reference",
                    ["target_type", "target_id"])


def downgrade() -> None:
    for table in ("search_reference", "search_date", "search_string", "search_token",
                  "resource_versions", "resources"):
        op.drop_table(table)
