"""pack sync state: a small pack's fingerprint, so that an unchanged re-sync reads nothing

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

Empty after the upgrade: each pack's next sync reads as before and writes its state.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pack_sync_state",
        sa.Column("pack_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("externals", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["pack_id"], ["packs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pack_id"),
    )


def downgrade() -> None:
    op.drop_table("pack_sync_state")
