from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import bindparam, func, text, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from attune.jobs.models import FINISHED, Job, JobBatch
from attune.packs.models import Pack


def add(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


# Postgres: a bulk sync's rows differ only by id and pack; the statement's text is constant
# (cached) and its 2,000 rows travel as three arrays instead of 38,000 parameters
_INSERT_QUEUED_PG = text(
    """
    INSERT INTO jobs (id, pack_id, pack_ref, kind, trigger, status, options, progress_done, attempts, batch_id,
                      created_by, started_by, created_at)
    SELECT u.id, u.pack_id, u.pack_ref, :kind, :trigger, :status, CAST(:options AS JSONB), :progress_done,
           :attempts, :batch_id, :created_by, :started_by, :created_at
    FROM unnest(CAST(:ids AS UUID[]), CAST(:pack_ids AS INTEGER[]), CAST(:refs AS TEXT[])) AS u(id, pack_id, pack_ref)
    """
).bindparams(bindparam("created_at", type_=Job.__table__.c.created_at.type))  # type: ignore[attr-defined]


def insert_queued(session: Session, rows: Sequence[dict[str, Any]], common: dict[str, Any]) -> None:
    """Queued jobs' rows that differ only by id, pack id and ref (``common``: every other
    column of them, the same for all; those it lacks are NULL)."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(sa.insert(Job), [{**common, **row} for row in rows])
        return
    params = {**common, "options": orjson.dumps(common["options"]).decode()}
    params.update(
        ids=[r["id"] for r in rows], pack_ids=[r["pack_id"] for r in rows], refs=[r["pack_ref"] for r in rows]
    )
    session.execute(_INSERT_QUEUED_PG, params)


def insert_batch(session: Session, batch_id: uuid.UUID, now: datetime) -> None:
    session.execute(sa.insert(JobBatch).values(id=batch_id, created_at=now))


def batch_known(session: Session, batch_id: uuid.UUID) -> bool:
    """Whether a bulk sync wrote this batch's row (those started before 0012 have none)."""
    return session.get(JobBatch, batch_id) is not None


def batch_pack_refs(session: Session, batch_id: uuid.UUID) -> list[str]:
    """The packs a batch's jobs sync."""
    stmt = select(col(Job.pack_ref)).where(col(Job.batch_id) == batch_id).distinct()
    return list(session.execute(stmt).scalars())


def get(session: Session, job_id: uuid.UUID, *, for_update: bool = False) -> Job | None:
    return session.get(Job, job_id, with_for_update=for_update or None)


# built once: a statement built at each call cost a worker a fifth of the query's time
_WITH_PACK = (
    select(Job, Pack).outerjoin(Pack, col(Pack.id) == col(Job.pack_id)).where(col(Job.id) == bindparam("job_id"))
)


def get_with_pack(session: Session, job_id: uuid.UUID) -> tuple[Job, Pack | None] | None:
    """The job and its pack, read by one query (a worker's job made two)."""
    row = session.execute(_WITH_PACK, {"job_id": job_id}).first()
    return None if row is None else (row[0], row[1])


_JOBS = Job.__table__  # type: ignore[attr-defined]


def _typed(*names: str) -> list[sa.BindParameter[Any]]:
    return [bindparam(name, type_=_JOBS.c[name].type) for name in names]


# A job's success: one statement of constant text, which a Pipeline sends with the job's
# other last writes (its pack's stored state, its lease) in one round trip.
SUCCEEDED = text(
    "UPDATE jobs SET status = :status, summary = :summary, finished_at = :finished_at, "
    "progress_done = :progress_done, progress_total = :progress_total, result = :result WHERE id = :id"
).bindparams(*_typed("id", "summary", "finished_at", "result"))


def set_fields(session: Session, job_id: uuid.UUID, **values: Any) -> None:
    """The job's row updated by a Core statement on the table: no synchronisation of the
    session's objects (an ORM-enabled UPDATE evaluated its criteria against them: more than
    the statement itself for a small pack's job)."""
    session.execute(sa.update(_JOBS).where(_JOBS.c.id == job_id).values(**values))


# A group's next job marked running by the statement its previous job's success sends
# (``service.mark_running_into``): one more attempt, started when the previous job
# finished (its finished_at as that job's success, sent first, wrote it).
RUNNING_AFTER = text(
    "UPDATE jobs SET status = 'running', finished_at = NULL, error = NULL, attempts = attempts + 1, "
    "started_at = COALESCE((SELECT p.finished_at FROM jobs p WHERE p.id = :after), :now) WHERE id = :id"
).bindparams(*_typed("id"), bindparam("after", type_=_JOBS.c.id.type), bindparam("now", type_=_JOBS.c.started_at.type))


def mark_running(session: Session, job_ids: Sequence[uuid.UUID], now: datetime) -> None:
    session.execute(
        update(Job)
        .where(col(Job.id).in_(list(job_ids)))
        .values(status="running", started_at=now, finished_at=None, error=None, attempts=col(Job.attempts) + 1)
    )


@dataclass(frozen=True, slots=True)
class Queued:
    """What a group task needs of one of its jobs (and of its pack) to start it."""

    id: uuid.UUID
    kind: str
    status: str
    chunks_total: int | None
    options: dict[str, Any]
    pack_id: int | None
    pack_ref: str
    active_version_id: int | None  # the pack's pushed version, when it has one


def states(session: Session, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Queued]:
    """id -> what a group task needs, of those of these jobs that exist."""
    stmt = (
        sa.select(
            col(Job.id),
            col(Job.kind),
            col(Job.status),
            col(Job.chunks_total),
            col(Job.options),
            col(Job.pack_id),
            col(Job.pack_ref),
            col(Pack.active_version_id),
        )
        .outerjoin(Pack, col(Pack.id) == col(Job.pack_id))
        .where(col(Job.id).in_(list(job_ids)))
    )
    return {r[0]: Queued(*r) for r in session.execute(stmt).all()}


_OUTCOME = text("SELECT status, error, CAST(result AS TEXT), pack_id IS NOT NULL FROM jobs WHERE id = :id").bindparams(
    bindparam("id", type_=Job.__table__.c.id.type)  # type: ignore[attr-defined]
)


def outcome(session: Session, job_id: uuid.UUID) -> tuple[str, str | None, str | None, bool] | None:
    """(status, error, result as JSON text, whether the pack still exists): what a waiter
    needs, without decoding the result."""
    row = session.execute(_OUTCOME, {"id": job_id}).first()
    if row is None:
        return None
    # a job created through the ORM holds JSON null until it has a result: no result either
    return row[0], row[1], None if row[2] in (None, "null") else row[2], row[3]


def batch(session: Session, batch_id: uuid.UUID) -> Sequence[Any]:
    """(id, status, progress_done, progress_total) of a batch's jobs: what its progress needs,
    without their results (a batch endpoint is polled; 200 results are megabytes)."""
    cols = (col(Job.id), col(Job.status), col(Job.progress_done), col(Job.progress_total))
    return session.execute(select(*cols).where(Job.batch_id == batch_id).order_by(col(Job.pack_ref))).all()


# Postgres: a batch's progress in one row (a poll of 2,000 jobs read 2,000 rows through the
# ORM's result machinery: about 15 ms of the API's CPU each time)
_BATCH_PG = text(
    """
    SELECT count(*), count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running'),
           count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
           COALESCE(sum(progress_done), 0), bool_or(progress_total IS NULL AND status NOT IN ('succeeded', 'failed')),
           COALESCE(sum(COALESCE(progress_total, progress_done)), 0),
           string_agg(CAST(id AS TEXT), ',' ORDER BY pack_ref, id)
    FROM jobs WHERE batch_id = :batch_id
    """
).bindparams(bindparam("batch_id", type_=Job.__table__.c.batch_id.type))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    total: int
    by_status: dict[str, int]
    files_done: int
    # None while a job has not listed its files; a job that ended before it did (failed: its
    # pack deleted, its directory refused) counts the files it did, so a finished batch has one
    files_total: int | None
    job_ids: list[str]  # in the order of their packs' refs


def batch_progress(session: Session, batch_id: uuid.UUID) -> BatchProgress | None:
    """What a batch's summary says of its jobs (None: no job has this batch id)."""
    if session.get_bind().dialect.name == "postgresql":
        total, queued, running, succeeded, failed, done, unknown, files, ids = session.execute(
            _BATCH_PG, {"batch_id": batch_id}
        ).one()
        if not total:
            return None
        counts = {"queued": queued, "running": running, "succeeded": succeeded, "failed": failed}
        return BatchProgress(total, counts, done, None if unknown else files, ids.split(","))
    return progress_of_rows(batch(session, batch_id))


def progress_of_rows(rows: Sequence[Any]) -> BatchProgress | None:
    """``batch_progress`` from the batch's rows (``batch``): what SQLite runs."""
    if not rows:
        return None
    counts = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    totals = [r.progress_done if r.progress_total is None and r.status in FINISHED else r.progress_total for r in rows]
    files_total = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
    return BatchProgress(len(rows), counts, sum(r.progress_done for r in rows), files_total, [str(r.id) for r in rows])


def fail_stale(session: Session, older_than: datetime, error: str, now: datetime) -> list[uuid.UUID]:
    stmt = (
        update(Job)
        .where(col(Job.status).in_(("queued", "running")), col(Job.created_at) < older_than)
        .values(status="failed", error=error, finished_at=now)
        .returning(col(Job.id))
    )
    return list(session.execute(stmt).scalars())


def list_for_pack(session: Session, pack_ref: str, *, limit: int, offset: int) -> tuple[Sequence[Job], int]:
    total = session.exec(select(func.count()).select_from(Job).where(Job.pack_ref == pack_ref)).one()
    # without their results (megabytes each for large packs): listings show the summary
    query = select(Job).options(defer(Job.result))  # type: ignore[arg-type]
    rows = session.exec(
        query.where(Job.pack_ref == pack_ref).order_by(col(Job.created_at).desc()).limit(limit).offset(offset)
    ).all()
    return rows, total
