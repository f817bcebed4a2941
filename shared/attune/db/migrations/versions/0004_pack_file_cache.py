"""pack file cache: the last check of every file; staging index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pack_files",
        sa.Column("pack_id", sa.Integer(), nullable=False),
        sa.Column("source_file", sa.String(length=1024), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("stat", sa.String(length=100), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column(
            "deps", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "unresolved", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "diagnostics", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["pack_id"], ["packs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pack_id", "source_file"),
    )
    op.add_column("sync_staging", sa.Column("stat", sa.String(length=100), nullable=False, server_default=""))
    op.add_column(
        "sync_staging",
        sa.Column(
            "unresolved", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
    )
    op.create_index("ix_sync_staging_job_ref", "sync_staging", ["job_id", "ref"], unique=False)
    # pack_files now decides what is unchanged; the workflow row need not repeat it
    op.drop_column("workflow_definitions", "deps")


def downgrade() -> None:
    op.add_column(
        "workflow_definitions",
        sa.Column(
            "deps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
            server_default="[]",
        ),
    )
    op.drop_index("ix_sync_staging_job_ref", table_name="sync_staging")
    op.drop_column("sync_staging", "unresolved")
    op.drop_column("sync_staging", "stat")
    op.drop_table("pack_files")
