"""The sync engine's SQL, and nothing else: staging rows, the merge, the file cache.

A sync job stages one row per workflow file (per chunk when the pack is split),
then one step merges the staged rows into the registry and drops them. The
pack's file cache (pack_files) holds the last check of every file, which lets an
unchanged file be skipped without being read.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import TextClause, bindparam, delete, func, insert, select, text
from sqlmodel import Session

from attune.db.copy import copy_rows
from attune.db.pipeline import Pipeline
from attune.sync.models import (
    STATUS_ERROR,
    STATUS_FILE_ERROR,
    STATUS_OK,
    STATUS_UNCHANGED,
    STATUS_UNCHANGED_ERROR,
    SyncChunk,
    SyncStaging,
)
from attune.workflows.checker import WorkflowResult
from attune.workflows.loader import SourceFile

S = SyncStaging.__table__  # type: ignore[attr-defined]
C = SyncChunk.__table__  # type: ignore[attr-defined]
COLUMNS = (
    "job_id", "position", "ref", "chunk", "status", "name", "source_file", "content_hash", "stat",
    "label", "description", "version", "param_schema", "out_schema", "definition", "tags", "diagnostics",
    "deps", "unresolved", "definition_hash",
)  # fmt: skip


def _json(value: Any) -> str | None:
    # orjson: 5x faster than json on definitions (profiled), which the validator has
    # already made plain JSON (string keys, finite numbers).
    return None if value is None else orjson.dumps(value).decode()


class CachedFile:
    """A pack_files row: how a file looked and what its check found. The JSON columns
    stay text: most rows are only compared (deps, unresolved) or copied (diagnostics)."""

    __slots__ = ("content_hash", "deps", "diagnostics", "stat", "status", "unresolved")

    def __init__(self, stat: str, content_hash: str, status: int, deps: str, unresolved: str, diagnostics: str) -> None:
        self.stat = stat
        self.content_hash = content_hash
        self.status = status
        self.deps = deps
        self.unresolved = unresolved
        self.diagnostics = diagnostics


_CACHED = (
    "SELECT source_file, stat, content_hash, status, CAST(deps AS TEXT), CAST(unresolved AS TEXT), "
    "CAST(diagnostics AS TEXT) FROM pack_files WHERE pack_id = :p"
)
_CACHED_OF_PACK = text(_CACHED)
_JOB = bindparam("job_id", type_=S.c.job_id.type)  # UUIDs bound as each dialect stores them


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


LOCK_NAMESPACE = 0x4154  # "AT": keeps our advisory locks apart from anyone else's
_LOCK = text("SELECT pg_advisory_xact_lock(:ns, :id)")


def lock_pack(session: Session, pack_id: int) -> None:
    """Serialises syncs of one pack (held until the transaction ends); other packs run in
    parallel. SQLite has one writer at a time anyway."""
    if not _sqlite(session):
        session.execute(_LOCK, {"ns": LOCK_NAMESPACE, "id": pack_id})


# A statement a connection runs again and again is prepared by the driver (psycopg, from
# its fifth run), and Postgres then keeps one plan for it, made for the tables as they were
# (nothing re-plans it: the staging table is never analysed). Made while the registry was
# small, such a plan can be quadratic on a pack of thousands of files. A sync of that many
# files has each statement planned for the tables at hand (its transaction only); a small
# pack keeps the kept plans (planning every statement again, a tree of 2,000 packs of 20
# files took 12% longer to sync cold and 45% longer unchanged: measured).
FRESH_PLANS_FROM = 256
_FRESH_PLANS = text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")


def fresh_plans(session: Session, files: int = FRESH_PLANS_FROM) -> None:
    """Plans the rest of the transaction's statements afresh when it handles ``files`` files
    or more (the default: a large pack's). Postgres only: SQLite keeps no plan made for
    the tables' sizes."""
    if files >= FRESH_PLANS_FROM and not _sqlite(session):
        session.execute(_FRESH_PLANS)


def lock_and_read_cache(session: Session, pack_id: int) -> dict[str, CachedFile]:
    """``lock_pack``, then the pack's whole file cache as read under the lock: one round trip
    on Postgres (``db/pipeline.py``: the lock's statement done before the read's begins,
    each its own snapshot), where a cold small pack of a bulk sync made two (issue 15)."""
    if _sqlite(session):
        return cached_files_of_pack(session, pack_id)  # one writer at a time: no lock to take
    p = Pipeline(session)
    p.add(_LOCK, {"ns": LOCK_NAMESPACE, "id": pack_id})
    rows = p.add(_CACHED_OF_PACK, {"p": pack_id})
    return {r[0]: CachedFile(*r[1:]) for r in p.run()[rows]}


def cached_files(session: Session, pack_id: int, files: Sequence[str]) -> dict[str, CachedFile]:
    if _sqlite(session):  # no arrays: an expanding IN, in batches under the parameter limit
        stmt = text(_CACHED + " AND source_file IN :files").bindparams(bindparam("files", expanding=True))
        found = {}
        for start in range(0, len(files), 500):
            batch = list(files[start : start + 500])
            found.update({r[0]: CachedFile(*r[1:]) for r in session.execute(stmt, {"p": pack_id, "files": batch})})
        return found
    rows = session.execute(text(_CACHED + " AND source_file = ANY(:files)"), {"p": pack_id, "files": list(files)})
    return {r[0]: CachedFile(*r[1:]) for r in rows}


def cached_files_of_pack(session: Session, pack_id: int) -> dict[str, CachedFile]:
    if _sqlite(session):
        return {r[0]: CachedFile(*r[1:]) for r in session.execute(text(_CACHED), {"p": pack_id})}
    # the driver's tuples straight: a whole pack's rows, where SQLAlchemy's row objects
    # cost a third of the fetch (profiled on an unchanged 10,000-file re-sync)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(_CACHED.replace(":p", "%s"), (pack_id,))
        return {r[0]: CachedFile(*r[1:]) for r in cur.fetchall()}


def checked_row(
    job_id: uuid.UUID, chunk: int, position: int, f: SourceFile, r: WorkflowResult, unresolved: list[str]
) -> tuple:
    diags = _json([x.to_dict() for x in r.diagnostics])
    d = r.definition
    if d is None:
        status = STATUS_FILE_ERROR if f.problem is not None else STATUS_ERROR
        return (job_id, position, r.ref, chunk, status, r.name, r.file, r.content_hash, f.stat,
                None, None, None, None, None, None, None, diags, _json(r.deps), _json(unresolved), None)  # fmt: skip
    canonical = r.canonical if r.canonical is not None else orjson.dumps(d, option=orjson.OPT_SORT_KEYS)
    return (
        job_id, position, r.ref, chunk, STATUS_OK, r.name, r.file, r.content_hash, f.stat,
        d["label"], d["description"], d["version"], _json(d["parameters"]), _json(d["output"]), canonical.decode(),
        _json(d["tags"]), diags, _json(r.deps), _json(unresolved), hashlib.sha256(canonical).hexdigest(),
    )  # fmt: skip


_STAGE_UNCHANGED_SQL = """
    INSERT INTO sync_staging (job_id, position, ref, chunk, status, name, source_file, content_hash, stat, diagnostics)
    SELECT :job_id, u.position, f.ref, :chunk, CASE WHEN f.status = :ok THEN :unchanged ELSE :unchanged_error END,
           substr(f.ref, {find} + 1), f.source_file, f.content_hash, f.stat, f.diagnostics
    FROM {pairs}
    JOIN pack_files f ON f.pack_id = :pack_id AND f.source_file = u.source_file
    """


def _stage_unchanged(dialect: str) -> TextClause:
    if dialect == "sqlite":  # (position, file) pairs as one JSON array
        pairs = (
            "(SELECT json_extract(value, '$[0]') AS position, json_extract(value, '$[1]') AS source_file "
            "FROM json_each(:pairs)) AS u"
        )
        sql = _STAGE_UNCHANGED_SQL.format(find="instr(f.ref, '.')", pairs=pairs)
    else:
        pairs = "unnest(CAST(:positions AS integer[]), CAST(:files AS text[])) AS u(position, source_file)"
        sql = _STAGE_UNCHANGED_SQL.format(find="strpos(f.ref, '.')", pairs=pairs)
    return text(sql).bindparams(
        _JOB,
        bindparam("ok", STATUS_OK),
        bindparam("unchanged", STATUS_UNCHANGED),
        bindparam("unchanged_error", STATUS_UNCHANGED_ERROR),
    )


def stage_rows(session: Session, rows: Sequence[tuple]) -> None:
    """Stages checked files (tuples from ``checked_row``)."""
    copy_rows(session, S, COLUMNS, rows)


def stage_unchanged(
    session: Session, *, job_id: uuid.UUID, chunk: int, pack_id: int, unchanged: Sequence[tuple[int, str]]
) -> None:
    """Stages unchanged files, (position, file) pairs, from their pack_files rows."""
    if not unchanged:
        return
    params: dict[str, Any] = {"job_id": job_id, "chunk": chunk, "pack_id": pack_id}
    if _sqlite(session):
        params["pairs"] = orjson.dumps(list(unchanged)).decode()
    else:
        params.update(positions=[p for p, _ in unchanged], files=[f for _, f in unchanged])
    session.execute(_stage_unchanged(session.get_bind().dialect.name), params)


def clear_chunk(session: Session, job_id: uuid.UUID, chunk: int) -> None:
    """Removes what an earlier delivery of this chunk staged (it is staged again whole)."""
    session.execute(delete(S).where(S.c.job_id == job_id, S.c.chunk == chunk))
    session.execute(delete(C).where(C.c.job_id == job_id, C.c.chunk == chunk))


def mark_chunk_done(session: Session, job_id: uuid.UUID, chunk: int, files: int) -> None:
    session.execute(insert(C).values(job_id=job_id, chunk=chunk, files=files))


def chunk_done(session: Session, job_id: uuid.UUID, chunk: int) -> bool:
    return session.execute(select(C.c.chunk).where(C.c.job_id == job_id, C.c.chunk == chunk)).first() is not None


def chunks_done(session: Session, job_id: uuid.UUID) -> int:
    return session.execute(select(func.count()).select_from(C).where(C.c.job_id == job_id)).scalar_one()


def staged_count(session: Session, job_id: uuid.UUID) -> int:
    return session.execute(select(func.count()).select_from(S).where(S.c.job_id == job_id)).scalar_one()


# A stored workflow that a file read again leaves as it was: same file, same content, same
# stored definition and warnings. Such a row is not updated (updated_at keeps its value) and
# the sync reports it ``changed: false``.
_SAME = """
    {w}.content_hash = {s}.content_hash AND {w}.source_file = {s}.source_file
    AND COALESCE(CAST({w}.definition AS TEXT), '') = COALESCE(CAST({s}.definition AS TEXT), '')
    AND COALESCE(CAST({w}.warnings AS TEXT), '') = COALESCE(CAST({s}.{warnings} AS TEXT), '')
"""

MERGE_PG = text(
    """
    INSERT INTO workflow_definitions AS w
        (ref, pack_id, name, label, description, version, param_schema, out_schema, definition, tags,
         warnings, source_file, content_hash, revision, created_at, updated_at)
    SELECT s.ref, :pack_id, s.name, s.label, s.description, s.version, s.param_schema, s.out_schema,
           s.definition, s.tags, s.diagnostics, s.source_file, s.content_hash,
           (SELECT max(r.number) FROM workflow_revisions r WHERE r.ref = s.ref), :now, :now
    FROM sync_staging s
    WHERE s.job_id = :job_id AND s.status = :ok
    ON CONFLICT (ref) DO UPDATE SET
        name = excluded.name, label = excluded.label, description = excluded.description,
        version = excluded.version, param_schema = excluded.param_schema, out_schema = excluded.out_schema,
        definition = excluded.definition, tags = excluded.tags, warnings = excluded.warnings,
        source_file = excluded.source_file, content_hash = excluded.content_hash,
        revision = excluded.revision, updated_at = excluded.updated_at
    WHERE w.pack_id = excluded.pack_id AND NOT ({same})
    RETURNING w.ref, (w.xmax = 0) AS inserted
    """.replace("{same}", _SAME.format(w="w", s="excluded", warnings="warnings"))
).bindparams(_JOB, bindparam("ok", STATUS_OK))

IDENTICAL = text(
    """
    SELECT s.ref FROM sync_staging s JOIN workflow_definitions w ON w.ref = s.ref AND w.pack_id = :pack_id
    WHERE s.job_id = :job_id AND s.status = :ok AND """
    + _SAME.format(w="w", s="s", warnings="diagnostics")
).bindparams(_JOB, bindparam("ok", STATUS_OK))


def identical_refs(session: Session, *, job_id: uuid.UUID, pack_id: int) -> set[str]:
    """The staged valid workflows whose stored row the merge would leave as it is (call before merging)."""
    return set(session.execute(IDENTICAL, {"job_id": job_id, "pack_id": pack_id}).scalars())


_MERGE_SQLITE = text(MERGE_PG.text.replace("RETURNING w.ref, (w.xmax = 0) AS inserted", "")).bindparams(
    _JOB, bindparam("ok", STATUS_OK)
)

# SQLite has no xmax: the refs about to be inserted are read first (same transaction,
# and BEGIN IMMEDIATE keeps every other writer out of it).
_NEW_REFS = text(
    """
    SELECT s.ref FROM sync_staging s
    WHERE s.job_id = :job_id AND s.status = :ok
      AND NOT EXISTS (SELECT 1 FROM workflow_definitions w WHERE w.ref = s.ref)
    """
).bindparams(_JOB, bindparam("ok", STATUS_OK))

_REMOVE = text(
    """
    DELETE FROM workflow_definitions
    WHERE pack_id = :pack_id
      AND ref NOT IN (SELECT s.ref FROM sync_staging s WHERE s.job_id = :job_id)
    RETURNING ref
    """
).bindparams(_JOB)

# NOT IN (subquery) below: Postgres hashes the subquery once, whatever it guesses of
# the never-analysed staging table (a correlated NOT EXISTS went quadratic at 10,000 files).

# The file cache follows what was checked (not the loader's refusals, decided afresh each time).
CACHE = text(
    """
    INSERT INTO pack_files AS f
        (pack_id, source_file, ref, stat, content_hash, status, deps, unresolved, diagnostics)
    SELECT :pack_id, s.source_file, s.ref, s.stat, s.content_hash, s.status,
           COALESCE(s.deps, '[]'), COALESCE(s.unresolved, '[]'), COALESCE(s.diagnostics, '[]')
    FROM sync_staging s
    WHERE s.job_id = :job_id AND s.status IN (:ok, :error)
    ON CONFLICT (pack_id, source_file) DO UPDATE SET
        ref = excluded.ref, stat = excluded.stat, content_hash = excluded.content_hash,
        status = excluded.status, deps = excluded.deps, unresolved = excluded.unresolved,
        diagnostics = excluded.diagnostics
    """
).bindparams(_JOB, bindparam("ok", STATUS_OK), bindparam("error", STATUS_ERROR))

_UNCACHE = text(
    """
    DELETE FROM pack_files
    WHERE pack_id = :pack_id
      AND source_file NOT IN (
          SELECT s.source_file FROM sync_staging s WHERE s.job_id = :job_id AND s.status <> :file_error)
    """
).bindparams(_JOB, bindparam("file_error", STATUS_FILE_ERROR))

REPORT = text(
    """
    SELECT s.ref, s.status, CAST(s.diagnostics AS TEXT), w.id, CAST(w.warnings AS TEXT)
    FROM sync_staging s LEFT JOIN workflow_definitions w ON w.ref = s.ref
    WHERE s.job_id = :job_id
    ORDER BY s.position
    """
).bindparams(_JOB)


def _upsert_staged(session: Session, params: dict[str, Any], now: Any) -> set[str]:
    """Upserts the staged valid workflows; returns the refs this inserted."""
    if _sqlite(session):
        created = set(session.execute(_NEW_REFS, params).scalars())
        session.execute(_MERGE_SQLITE, {**params, "now": now})
        return created
    return {ref for ref, inserted in session.execute(MERGE_PG, {**params, "now": now}) if inserted}


def merge(session: Session, *, job_id: uuid.UUID, pack_id: int, now: Any) -> tuple[list[str], set[str]]:
    """Upserts the staged valid workflows, deletes the pack's workflows with no file, and brings
    the file cache in line with the files. Returns (removed refs, refs created by this merge)."""
    params = {"job_id": job_id, "pack_id": pack_id}
    created = _upsert_staged(session, params, now)
    removed = session.execute(_REMOVE, params).scalars().all()
    session.execute(CACHE, params)
    session.execute(_UNCACHE, params)
    return sorted(removed), created


# A whole-pack sync that staged only the files it read (the unchanged ones stay in
# pack_files): what merge() and report_rows() do with a full staging, in three steps.
_FORGET = """
    DELETE FROM pack_files
    WHERE pack_id = :pack_id
      AND (source_file NOT IN ({listed})
           OR source_file IN (
               SELECT s.source_file FROM sync_staging s WHERE s.job_id = :job_id AND s.status = :file_error))
    """
_LISTED = {"postgresql": "SELECT unnest(CAST(:listed AS text[]))", "sqlite": "SELECT value FROM json_each(:listed)"}

REMOVE_READ = text(
    """
    DELETE FROM workflow_definitions
    WHERE pack_id = :pack_id
      AND ref NOT IN (SELECT s.ref FROM sync_staging s WHERE s.job_id = :job_id)
      AND ref NOT IN (SELECT f.ref FROM pack_files f WHERE f.pack_id = :pack_id)
    RETURNING ref
    """
).bindparams(_JOB)

CACHED_REPORT = text(
    """
    SELECT f.source_file, f.ref, CASE WHEN f.status = :ok THEN :unchanged ELSE :unchanged_error END,
           CAST(f.diagnostics AS TEXT), w.id, CAST(w.warnings AS TEXT)
    FROM pack_files f LEFT JOIN workflow_definitions w ON w.ref = f.ref
    WHERE f.pack_id = :pack_id
    """
).bindparams(
    bindparam("ok", STATUS_OK),
    bindparam("unchanged", STATUS_UNCHANGED),
    bindparam("unchanged_error", STATUS_UNCHANGED_ERROR),
)


_FORGET_OF = {
    dialect: text(_FORGET.format(listed=listed)).bindparams(_JOB, bindparam("file_error", STATUS_FILE_ERROR))
    for dialect, listed in _LISTED.items()
}  # built once: SQLAlchemy caches a statement's compiled form by the statement object
FORGET_PG = _FORGET_OF["postgresql"]


def forget_unlisted(session: Session, *, job_id: uuid.UUID, pack_id: int, listed: Sequence[str]) -> None:
    """Forgets the cached files no longer listed, or now refused by the loader."""
    dialect = session.get_bind().dialect.name
    listed_param = orjson.dumps(list(listed)).decode() if dialect == "sqlite" else list(listed)
    stmt = _FORGET_OF.get(dialect, _FORGET_OF["postgresql"])
    session.execute(stmt, {"job_id": job_id, "pack_id": pack_id, "listed": listed_param})


def merge_read(session: Session, *, job_id: uuid.UUID, pack_id: int, now: Any) -> tuple[list[str], set[str]]:
    """merge() when only the files read were staged (call ``forget_unlisted`` first): upsert
    them, remove the workflows that have neither a staged nor a cached file, cache what was read."""
    params: dict[str, Any] = {"job_id": job_id, "pack_id": pack_id}
    created = _upsert_staged(session, params, now)
    removed = session.execute(REMOVE_READ, params).scalars().all()
    session.execute(CACHE, params)
    return sorted(removed), created


def report_cached(session: Session, pack_id: int) -> dict[str, Any]:
    """source file -> report row, for the unchanged files a whole-pack sync did not stage."""
    return {r[0]: r[1:] for r in session.execute(CACHED_REPORT, {"pack_id": pack_id})}


def report_rows(session: Session, job_id: uuid.UUID) -> list[Any]:
    return list(session.execute(REPORT, {"job_id": job_id}).all())


DROP_STAGED = text("DELETE FROM sync_staging WHERE job_id = :job_id").bindparams(_JOB)


def drop_staged(session: Session, job_id: uuid.UUID) -> None:
    """Removes a job's staging rows (a job that never split into chunks has no chunk mark)."""
    session.execute(DROP_STAGED, {"job_id": job_id})


def drop(session: Session, job_id: uuid.UUID) -> None:
    """Removes a job's staging rows and chunk marks."""
    drop_staged(session, job_id)
    session.execute(delete(C).where(C.c.job_id == job_id))


_ABANDONED = "DELETE FROM {table} WHERE job_id IN (SELECT id FROM jobs WHERE status IN ('succeeded', 'failed'))"


def drop_abandoned(session: Session) -> int:
    """Staging rows and chunk marks of finished jobs (a chunk still running when its job
    failed, its pack deleted meanwhile): what no step will ever merge. Returns the rows removed."""
    removed = 0
    for table in ("sync_staging", "sync_chunks"):
        removed += int(session.execute(text(_ABANDONED.format(table=table))).rowcount or 0)  # type: ignore[attr-defined]
    return removed
