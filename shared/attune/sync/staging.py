"""Staging rows of a sync job: written per chunk, merged in one step, then dropped."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlmodel import Session

from attune.db.copy import copy_rows
from attune.sync.models import STATUS_ERROR, STATUS_OK, STATUS_UNCHANGED, SyncChunk, SyncStaging
from attune.workflows.checker import WorkflowResult
from attune.workflows.loader import SourceFile

S = SyncStaging.__table__  # type: ignore[attr-defined]
C = SyncChunk.__table__  # type: ignore[attr-defined]
COLUMNS = (
    "job_id", "ref", "chunk", "position", "status", "name", "source_file", "content_hash", "deps",
    "label", "description", "version", "param_schema", "out_schema", "definition", "tags", "diagnostics",
)  # fmt: skip
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _json(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def unchanged_row(job_id: uuid.UUID, chunk: int, position: int, f: SourceFile) -> tuple:
    return (job_id, f.ref, chunk, position, STATUS_UNCHANGED, f.name, f.path, f.content_hash, None,
            None, None, None, None, None, None, None, None)  # fmt: skip


def checked_row(job_id: uuid.UUID, chunk: int, position: int, r: WorkflowResult) -> tuple:
    d = r.definition
    if d is None:
        diags = [x.to_dict() for x in r.diagnostics]
        return (job_id, r.ref, chunk, position, STATUS_ERROR, r.name, r.file, r.content_hash, None,
                None, None, None, None, None, None, None, _json(diags))  # fmt: skip
    warnings = [x.to_dict() for x in r.diagnostics]
    return (
        job_id, r.ref, chunk, position, STATUS_OK, r.name, r.file, r.content_hash, _json(r.deps),
        d["label"], d["description"], d["version"], _json(d["parameters"]), _json(d["output"]), _json(d),
        _json(d["tags"]), _json(warnings),
    )  # fmt: skip


def write_chunk(session: Session, job_id: uuid.UUID, chunk: int, rows: Sequence[tuple]) -> None:
    """Replaces the chunk's rows (a redelivered chunk writes them again) and marks it done."""
    session.execute(delete(S).where(S.c.job_id == job_id, S.c.chunk == chunk))
    copy_rows(session, S, COLUMNS, rows)
    session.execute(delete(C).where(C.c.job_id == job_id, C.c.chunk == chunk))
    session.execute(insert(C).values(job_id=job_id, chunk=chunk, files=len(rows)))


def chunks_done(session: Session, job_id: uuid.UUID) -> int:
    return session.execute(select(func.count()).select_from(C).where(C.c.job_id == job_id)).scalar_one()


def staged_count(session: Session, job_id: uuid.UUID) -> int:
    return session.execute(select(func.count()).select_from(S).where(S.c.job_id == job_id)).scalar_one()


_MERGE = text(
    """
    INSERT INTO workflow_definitions AS w
        (ref, pack_id, name, label, description, version, param_schema, out_schema, definition, tags,
         warnings, source_file, content_hash, deps, created_at, updated_at)
    SELECT s.ref, :pack_id, s.name, s.label, s.description, s.version, s.param_schema, s.out_schema,
           s.definition, s.tags, s.diagnostics, s.source_file, s.content_hash, s.deps, :now, :now
    FROM sync_staging s
    WHERE s.job_id = :job_id AND s.status = :ok
    ON CONFLICT (ref) DO UPDATE SET
        name = excluded.name, label = excluded.label, description = excluded.description,
        version = excluded.version, param_schema = excluded.param_schema, out_schema = excluded.out_schema,
        definition = excluded.definition, tags = excluded.tags, warnings = excluded.warnings,
        source_file = excluded.source_file, content_hash = excluded.content_hash,
        deps = excluded.deps, updated_at = excluded.updated_at
    WHERE w.pack_id = excluded.pack_id
    """
).bindparams(bindparam("ok", STATUS_OK))

_REMOVE = text(
    """
    DELETE FROM workflow_definitions w
    WHERE w.pack_id = :pack_id
      AND NOT EXISTS (SELECT 1 FROM sync_staging s WHERE s.job_id = :job_id AND s.ref = w.ref)
    RETURNING w.ref
    """
)

_REPORT = text(
    """
    SELECT s.ref, s.status, s.diagnostics, w.id, w.warnings
    FROM sync_staging s LEFT JOIN workflow_definitions w ON w.ref = s.ref
    WHERE s.job_id = :job_id
    ORDER BY s.position
    """
)


def merge(session: Session, job_id: uuid.UUID, pack_id: int, now: Any) -> list[str]:
    """Upserts the staged valid workflows, deletes the pack's workflows with no file; returns those refs."""
    session.execute(_MERGE, {"job_id": job_id, "pack_id": pack_id, "now": now})
    removed = session.execute(_REMOVE, {"job_id": job_id, "pack_id": pack_id}).scalars().all()
    return sorted(removed)


def report_rows(session: Session, job_id: uuid.UUID) -> list[Any]:
    return list(session.execute(_REPORT, {"job_id": job_id}).all())


def drop(session: Session, job_id: uuid.UUID) -> None:
    session.execute(delete(S).where(S.c.job_id == job_id))
    session.execute(delete(C).where(C.c.job_id == job_id))
