"""Job records: every sync/validate run, whatever started it, with status and progress."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from attune.access.principal import Principal
from attune.db.pipeline import Pipeline
from attune.db.types import utcnow
from attune.errors import NotFound
from attune.jobs import repository
from attune.jobs.models import Job, JobKind, JobStatus, JobTrigger
from attune.jobs.schemas import BatchSummary
from attune.packs.models import Pack
from attune.sync.schemas import JobResult, SyncResult, dump_result, summarise


def create_job(
    session: Session,
    pack: Pack,
    kind: JobKind,
    trigger: JobTrigger,
    *,
    options: dict[str, Any] | None = None,
    by: Principal | None = None,
    batch_id: uuid.UUID | None = None,
) -> Job:
    return repository.add(
        session,
        Job(
            kind=kind.value,
            trigger=trigger.value,
            status=JobStatus.QUEUED.value,
            pack_id=pack.id,
            pack_ref=pack.ref,
            options=options or {},
            created_by=None if by is None else by.user_id,
            started_by=None if by is None else by.actor,
            batch_id=batch_id,
        ),
    )


def create_jobs(
    session: Session,
    packs: Sequence[tuple[int, str]],
    kind: JobKind,
    trigger: JobTrigger,
    *,
    by: Principal | None,
    batch_id: uuid.UUID | None,
) -> list[SimpleNamespace]:
    """One queued job per pack ((id, ref) each), inserted in one statement (a bulk sync of
    thousands of packs: building ORM objects cost 0.2 ms each). Returns the rows written,
    with the attributes of a ``Job``."""
    common: dict[str, Any] = {
        "kind": kind.value,
        "trigger": trigger.value,
        "status": JobStatus.QUEUED.value,
        "options": {},
        "progress_done": 0,
        "attempts": 0,
        "batch_id": batch_id,
        "created_by": None if by is None else by.user_id,
        "started_by": None if by is None else by.actor,
        "created_at": utcnow(),
    }
    rows = [{"id": uuid.uuid4(), "pack_id": pack_id, "pack_ref": ref} for pack_id, ref in packs]
    if batch_id is not None:  # written even when empty: its id then answers as a finished batch
        repository.insert_batch(session, batch_id, common["created_at"])
    if rows:
        repository.insert_queued(session, rows, common)
    unset = dict.fromkeys(("progress_total", "result", "summary", "error", "chunks_total", "started_at", "finished_at"))
    return [SimpleNamespace(**common, **unset, **row) for row in rows]


def get_job(session: Session, job_id: uuid.UUID) -> Job:
    job = repository.get(session, job_id)
    if job is None:
        raise NotFound(f"Job '{job_id}' not found")
    return job


def get_job_with_pack(session: Session, job_id: uuid.UUID) -> tuple[Job, Pack | None]:
    """``get_job`` and the job's pack (None: deleted), read by one query (a worker starting
    the job needs both)."""
    found = repository.get_with_pack(session, job_id)
    if found is None:
        raise NotFound(f"Job '{job_id}' not found")
    return found


def get_job_for_update(session: Session, job_id: uuid.UUID) -> Job:
    job = repository.get(session, job_id, for_update=True)
    if job is None:
        raise NotFound(f"Job '{job_id}' not found")
    return job


def outcome(session: Session, job_id: uuid.UUID) -> tuple[str, str | None, str | None, bool]:
    found = repository.outcome(session, job_id)
    if found is None:
        raise NotFound(f"Job '{job_id}' not found")
    return found


def batch_summary(session: Session, batch_id: uuid.UUID, by: Principal | None = None) -> BatchSummary:
    """The batch's progress; ``by``, a key limited to packs, reads only a batch of its packs
    (403 otherwise, without naming the others)."""
    found = repository.batch_progress(session, batch_id)
    if found is not None and by is not None and by.limited_to_packs:
        for ref in repository.batch_pack_refs(session, batch_id):
            by.require_pack(ref, named=False)
    if found is None:
        if not repository.batch_known(session, batch_id):
            raise NotFound(f"Batch '{batch_id}' not found")
        found = repository.BatchProgress(0, {}, 0, 0, [])  # it started no job: nothing to wait for
    counts = {s.value: found.by_status.get(s.value, 0) for s in JobStatus}
    return BatchSummary(
        batch_id=batch_id,
        jobs_total=found.total,
        jobs=counts,
        finished=counts[JobStatus.SUCCEEDED.value] + counts[JobStatus.FAILED.value] == found.total,
        files_done=found.files_done,
        files_total=found.files_total,
        job_ids=found.job_ids,  # type: ignore[arg-type]  # validated as UUIDs by the model
    )


def fail_stale_jobs(session: Session, stale_seconds: int) -> list[uuid.UUID]:
    """Marks failed the jobs queued or running for longer than ``stale_seconds``."""
    now = utcnow()
    return repository.fail_stale(
        session,
        now - timedelta(seconds=stale_seconds),
        f"No worker finished this job within {stale_seconds} s (worker lost, or none running)",
        now,
    )


def list_pack_jobs(session: Session, pack_ref: str, *, limit: int, offset: int) -> tuple[Sequence[Job], int]:
    return repository.list_for_pack(session, pack_ref, limit=limit, offset=offset)


def relax_durability(session: Session) -> None:
    """For a transaction whose loss in a crash costs nothing (a status the redelivered job
    writes again, a progress figure): commit without waiting for the disk."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def mark_running(session: Session, job: Job) -> None:
    relax_durability(session)
    job.status = JobStatus.RUNNING.value
    job.started_at = utcnow()
    job.finished_at = None
    job.error = None
    job.attempts += 1
    session.add(job)
    session.flush()


def states(session: Session, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, repository.Queued]:
    """What a group task needs of those of these jobs that exist (and of their packs)."""
    return repository.states(session, job_ids)


def mark_replayed(session: Session, job_id: uuid.UUID, result: SyncResult) -> None:
    """``mark_succeeded`` without the job's row loaded: a replayed sync's (issue 15)."""
    n = result.loaded_count
    repository.set_fields(
        session, job_id, status=JobStatus.SUCCEEDED.value, result=dump_result(result), summary=summarise(result),
        finished_at=utcnow(), progress_done=n, progress_total=n,
    )  # fmt: skip


def mark_running_into(into: Pipeline, job_id: uuid.UUID, *, after: uuid.UUID) -> None:
    """``mark_running`` of a group's next job, queued last ``into`` the pipeline of the job
    before it (``after``): committed with that job's success, and started when it finished
    (issue 15)."""
    into.add_last(repository.RUNNING_AFTER, {"id": job_id, "after": after, "now": utcnow()})


def mark_running_many(session: Session, job_ids: Sequence[uuid.UUID]) -> None:
    """``mark_running`` for the jobs of a group task, in one statement."""
    if not job_ids:
        return
    relax_durability(session)
    repository.mark_running(session, job_ids, utcnow())


def set_progress(session: Session, job_id: uuid.UUID, done: int, total: int | None) -> None:
    relax_durability(session)
    repository.set_fields(session, job_id, progress_done=done, progress_total=total)


def mark_succeeded(
    session: Session, job: Job, result: JobResult, into: Pipeline, progress: tuple[int, int | None]
) -> None:
    """The job's row written by one UPDATE of constant text, queued ``into`` the caller's
    pipeline, with its progress (done, total), and ``job`` told so without making it dirty:
    no flush of the ORM's (a flush that found nothing to write still cost 0.2 ms, and an
    ORM UPDATE 0.6 ms, of a worker's CPU per small pack's job, issue 15)."""
    values: dict[str, Any] = {
        "status": JobStatus.SUCCEEDED.value,
        "summary": summarise(result),
        "finished_at": utcnow(),
        "progress_done": progress[0],
        "progress_total": progress[1],
    }
    for name, value in values.items():
        set_committed_value(job, name, value)
    into.add(repository.SUCCEEDED, {"id": job.id, "result": dump_result(result), **values})  # the result: JSON text
    session.expire(job, ["result"])  # read back as JSON, not as the fragment written


def mark_failed(session: Session, job_id: uuid.UUID, error: str) -> None:
    repository.set_fields(session, job_id, status=JobStatus.FAILED.value, error=error[:4000], finished_at=utcnow())


def is_finished(job: Job) -> bool:
    return job.status in (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value)
