"""pack sync state as JSONB on Postgres: an unchanged pack's replay copies its stored result
into the job's row without parsing it again (issue 15)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

Postgres parsed the stored result (JSON text, about 5 KB for a pack of 20 workflows) at
every replay: a third of the replay's time on the server. The rows keep their content (the
text was written from JSON); SQLite keeps text (its JSON type is text).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE pack_sync_state ALTER COLUMN result TYPE JSONB USING result::jsonb, "
            "ALTER COLUMN summary TYPE JSONB USING summary::jsonb"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE pack_sync_state ALTER COLUMN result TYPE TEXT USING result::text, "
            "ALTER COLUMN summary TYPE TEXT USING summary::text"
        )
