"""workflow context hash, tag index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workflow_definitions",
        sa.Column("context_hash", sa.String(length=64), nullable=False, server_default=""),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_workflow_definitions_tags",
            "workflow_definitions",
            ["tags"],
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )
    op.create_index("ix_jobs_pack_ref_created_at", "jobs", ["pack_ref", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_pack_ref_created_at", table_name="jobs")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_workflow_definitions_tags", table_name="workflow_definitions")
    op.drop_column("workflow_definitions", "context_hash")
