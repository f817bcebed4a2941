"""job batches: a POST /api/v1/packs/sync that started no job answers as an empty batch

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

"Sync every pack" with no pack registered answered 202 with a batch id that then
answered 404 (a batch was known only by its jobs' rows). Each bulk sync now writes its
batch's row; the batches started before the upgrade keep answering from their jobs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("job_batches")
