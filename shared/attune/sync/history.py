"""The revisions a sync writes, in its own transaction: one statement for the changed
workflows (from the staging rows, joined to each ref's latest revision), one for the
tombstones of the removed ones. A failed sync rolls both back with everything else.

A staged valid workflow gets a revision when its ref has none yet, when its latest
revision is a tombstone (it comes back: numbering continues), or when its definition's
hash differs from the latest revision's. An unchanged definition writes nothing; nor
does an unchanged file, which a whole-pack sync does not even stage.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import TextClause, bindparam, text
from sqlmodel import Session

from attune.db.types import TZDateTime
from attune.revisions.content import StructuralSummary
from attune.revisions.models import CHANGE_CREATE, CHANGE_REMOVE, CHANGE_UPDATE
from attune.sync.models import STATUS_OK, SyncStaging

_JOB = bindparam("job_id", type_=SyncStaging.__table__.c.job_id.type)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Stamp:
    """What every revision of one sync says of itself: which job, whose, when, which pack."""

    job_id: uuid.UUID
    pack_ref: str
    author: str
    now: datetime


# The latest revision of the ref ``{ref}``: one probe of (ref, number)'s index per row. It
# was a join with a GROUP BY of every ref the sync staged; a plan of that made while the
# tables were small (the driver prepares a statement run again and again, and Postgres
# keeps one plan for it) read the grouped rows again for each staged row: 6.9 s for 3,000
# files, minutes for 10,000 (measured). Per row, the cost stays linear whatever the plan.
_LATEST_NUMBER = "(SELECT max(r.number) FROM workflow_revisions r WHERE r.ref = {ref})"

_NOW = bindparam("now", type_=TZDateTime)
RECORD = text(
    f"""
    INSERT INTO workflow_revisions
        (ref, number, pack_ref, change, definition_hash, definition, source_file, file_sha256, job_id, author,
         created_at)
    SELECT s.ref, COALESCE(l.number, 0) + 1, :pack_ref,
           CASE WHEN l.number IS NULL OR l.change = :remove THEN :create ELSE :update END,
           s.definition_hash, s.definition, s.source_file, s.content_hash, :job_id, :author, :now
    FROM sync_staging s
    LEFT JOIN workflow_revisions l ON l.ref = s.ref AND l.number = {_LATEST_NUMBER.format(ref="s.ref")}
    WHERE s.job_id = :job_id AND s.status = :ok
      AND (l.number IS NULL OR l.change = :remove OR l.definition_hash <> s.definition_hash)
    """
).bindparams(
    _JOB,
    _NOW,
    bindparam("ok", STATUS_OK),
    bindparam("create", CHANGE_CREATE),
    bindparam("update", CHANGE_UPDATE),
    bindparam("remove", CHANGE_REMOVE),
)

_REFS = {
    "postgresql": "SELECT unnest(CAST(:refs AS text[])) AS ref",
    "sqlite": "SELECT value AS ref FROM json_each(:refs)",
}

_TOMBSTONES = """
    INSERT INTO workflow_revisions (ref, number, pack_ref, change, job_id, author, created_at)
    SELECT x.ref, COALESCE({latest}, 0) + 1, :pack_ref, :remove, :job_id, :author, :now
    FROM ({refs}) x
    """


def stamp_params(stamp: Stamp) -> dict[str, object]:
    return {"job_id": stamp.job_id, "pack_ref": stamp.pack_ref, "author": stamp.author, "now": stamp.now}


def record(session: Session, stamp: Stamp) -> None:
    """A revision for each staged valid workflow whose stored definition would change.
    Call before the staging rows are merged (the merge reads the new revision numbers)."""
    session.execute(RECORD, stamp_params(stamp))


def tombstones(session: Session, stamp: Stamp, removed: Sequence[str]) -> None:
    """A tombstone revision for each workflow the sync removed."""
    if not removed:
        return
    dialect = session.get_bind().dialect.name
    param = orjson.dumps(list(removed)).decode() if dialect == "sqlite" else list(removed)
    session.execute(tombstones_statement(dialect), {**stamp_params(stamp), "refs": param})


def tombstones_statement(dialect: str) -> TextClause:
    refs = _REFS.get(dialect, _REFS["postgresql"])
    sql = _TOMBSTONES.format(refs=refs, latest=_LATEST_NUMBER.format(ref="x.ref"))
    return text(sql).bindparams(_JOB, _NOW, bindparam("remove", CHANGE_REMOVE))


# A revision with no previous definition (a create, or a return after a tombstone) needs
# only its tasks' names and its top-level fields for the plan's summary: the database
# gives those, not the definition (10,000 created workflows read back and decoded cost a
# push about 2 s). Same rules as revisions.content.summarise(None, definition).
_NEW_SHAPE = {
    "postgresql": (
        "CAST(jsonb_path_query_array(r.definition, '$.tasks[*] ? (@.type() == \"object\").name') AS TEXT)",
        "(SELECT CAST(COALESCE(jsonb_agg(e.key ORDER BY e.key), '[]') AS TEXT) FROM jsonb_each(r.definition) e "
        "WHERE e.key <> 'tasks' AND jsonb_typeof(e.value) <> 'null')",
    ),
    "sqlite": (
        "(SELECT json_group_array(json_extract(t.value, '$.name')) FROM json_each(r.definition, '$.tasks') t "
        "WHERE t.type = 'object')",
        "(SELECT json_group_array(k) FROM (SELECT e.key AS k FROM json_each(r.definition) e "
        "WHERE e.key <> 'tasks' AND e.type <> 'null' ORDER BY e.key))",
    ),
}
_WRITTEN = """
    SELECT r.ref, r.number, r.change,
           CASE WHEN p.definition IS NULL THEN NULL ELSE CAST(r.definition AS TEXT) END,
           CAST(p.definition AS TEXT),
           CASE WHEN p.definition IS NULL THEN {names} END,
           CASE WHEN p.definition IS NULL THEN {fields} END
    FROM workflow_revisions r
    LEFT JOIN workflow_revisions p ON p.ref = r.ref AND p.number = r.number - 1
    WHERE r.job_id = :job_id
    """


def _loads(value: str | None) -> object:
    return None if value is None else orjson.loads(value)


def _created(names: str | None, fields: str | None) -> StructuralSummary | None:
    """The summary of a definition with none before it, from its tasks' names and fields."""
    if names is None or fields is None:
        return None  # a tombstone: no definition
    added = list(dict.fromkeys(str(n) for n in orjson.loads(names)))
    return StructuralSummary(tasks_added=added, fields_changed=orjson.loads(fields))


def written(session: Session, job_id: uuid.UUID) -> dict[str, tuple]:
    """ref -> (number, change, definition, the previous revision's definition, summary) of
    the revisions a job wrote. A revision with no previous definition comes with its
    summary and without its definition (None); the others with both definitions and no
    summary (the caller compares them)."""
    dialect = session.get_bind().dialect.name
    names, fields = _NEW_SHAPE.get(dialect, _NEW_SHAPE["postgresql"])
    stmt = text(_WRITTEN.format(names=names, fields=fields)).bindparams(_JOB)
    rows = session.execute(stmt, {"job_id": job_id})
    return {
        ref: (n, change, _loads(new), _loads(old), None if old is not None else _created(names_, fields_))
        for ref, n, change, new, old, names_, fields_ in rows
    }
