"""workflow revisions: every change of a stored definition; jobs say who started them

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Every workflow already registered gets revision 1 (its current definition), so that
the next sync compares against it and GET /api/v1/workflows/{ref} names a revision.
"""

import hashlib
from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _hash(definition: object) -> str:
    # the same as attune.revisions.content.definition_hash (a unit test holds them equal)
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()


def upgrade() -> None:
    revisions = op.create_table(
        "workflow_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("pack_ref", sa.String(length=100), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("definition_hash", sa.String(length=64), nullable=True),
        sa.Column("definition", JSON, nullable=True),
        sa.Column("source_file", sa.String(length=1024), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref", "number", name="uq_workflow_revisions_ref_number"),
    )
    op.create_index("ix_workflow_revisions_job_id", "workflow_revisions", ["job_id"])
    op.create_index("ix_workflow_revisions_pack_ref_created_at", "workflow_revisions", ["pack_ref", "created_at"])
    op.add_column("sync_staging", sa.Column("definition_hash", sa.String(length=64), nullable=True))
    op.add_column("workflow_definitions", sa.Column("revision", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("started_by", sa.String(length=128), nullable=True))

    conn = op.get_bind()
    conn.execute(sa.text("UPDATE jobs SET started_by = (SELECT u.login FROM users u WHERE u.id = jobs.created_by)"))
    # revision 1 of every registered workflow, in batches (its definition hashed here)
    rows = conn.execute(
        sa.text(
            "SELECT w.ref AS ref, p.ref AS pack_ref, w.definition AS definition, w.source_file AS source_file, "
            "w.content_hash AS content_hash, w.updated_at AS updated_at "
            "FROM workflow_definitions w JOIN packs p ON p.id = w.pack_id ORDER BY w.id"
        ).columns(definition=JSON, updated_at=sa.DateTime(timezone=True))
    ).all()
    batch = []
    for ref, pack_ref, definition, source_file, content_hash, updated_at in rows:
        batch.append(
            {
                "ref": ref, "number": 1, "pack_ref": pack_ref, "change": "create",
                "definition_hash": _hash(definition), "definition": definition, "source_file": source_file,
                "file_sha256": content_hash, "job_id": None, "author": "migration", "created_at": updated_at,
            }
        )  # fmt: skip
        if len(batch) == 1000:
            op.bulk_insert(revisions, batch)
            batch = []
    if batch:
        op.bulk_insert(revisions, batch)
    conn.execute(sa.text("UPDATE workflow_definitions SET revision = 1"))


def downgrade() -> None:
    op.drop_column("jobs", "started_by")
    op.drop_column("workflow_definitions", "revision")
    op.drop_column("sync_staging", "definition_hash")
    op.drop_index("ix_workflow_revisions_pack_ref_created_at", table_name="workflow_revisions")
    op.drop_index("ix_workflow_revisions_job_id", table_name="workflow_revisions")
    op.drop_table("workflow_revisions")
