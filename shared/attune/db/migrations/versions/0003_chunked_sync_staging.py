"""chunked sync staging; workflow deps replace the context hash

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_chunks",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "chunk"),
    )
    op.create_table(
        "sync_staging",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("source_file", sa.String(length=1024), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("deps", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("version", sa.String(length=50), nullable=True),
        sa.Column(
            "param_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "out_schema",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "diagnostics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "position"),
        # Scratch data: not worth WAL. A crash loses only what the redelivered job redoes.
        prefixes=["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else [],
    )
    # What a workflow's tasks call replaces the context hash: an unchanged file is
    # skipped while its calls resolve, whatever else was added to or removed from the pack.
    op.add_column(
        "workflow_definitions",
        sa.Column(
            "deps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
            server_default="[]",
        ),
    )
    op.drop_column("workflow_definitions", "context_hash")
    op.add_column("jobs", sa.Column("chunks_total", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("batch_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_jobs_batch_id"), "jobs", ["batch_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_batch_id"), table_name="jobs")
    op.drop_column("jobs", "batch_id")
    op.drop_column("jobs", "chunks_total")
    op.add_column(
        "workflow_definitions",
        sa.Column("context_hash", sa.String(length=64), nullable=False, server_default=""),
    )
    op.drop_column("workflow_definitions", "deps")
    op.drop_table("sync_staging")
    op.drop_table("sync_chunks")
