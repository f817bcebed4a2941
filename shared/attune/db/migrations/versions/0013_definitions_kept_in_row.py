"""definitions kept in their rows: a compressed definition of up to about 4 KB stays in the
row instead of going to the TOAST table (issue 15)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

Postgres compresses a row over about 2 KB and moves what still does not fit under 2 KB to
the table's TOAST table (one more row, and index entry, per 2 KB). A workflow's
definition (5 KB of JSON for a workflow of a dozen tasks) compresses to 1.5-3 KB: half of
them went out of line, in each of the three tables a sync writes them to (staged,
recorded as a revision, registered), and each copy from one table to the next fetched it
from one TOAST table to store it in the next. With a target of 4080 bytes they stay in
the row, compressed: the revisions' INSERT of a cold pack of 20 files took 0.59 ms instead of
1.57 (measured; README, "Definitions kept in their rows"). Only rows written from now on
are stored so; the others stay as they are. Postgres only: SQLite has no TOAST.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("sync_staging", "workflow_revisions", "workflow_definitions")
TARGET = 4080  # bytes: half a page; Postgres accepts up to 8160


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:  # (a SHARE UPDATE EXCLUSIVE lock: reads and writes go on)
            op.execute(f"ALTER TABLE {table} SET (toast_tuple_target = {TARGET})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} RESET (toast_tuple_target)")
