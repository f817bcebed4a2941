"""The unit-of-work edges of sync/validate jobs, called by the worker's thin tasks.

A job goes queued -> running -> succeeded | failed. A pack with at most
``sync.chunk_size`` files is synced in one task and one transaction. A larger
pack is split: ``run_job`` records the chunk count and enqueues one chunk task
per slice of files; each chunk checks its files and stages the outcome (its
own transaction, redone whole on redelivery); the chunk that completes the
set enqueues the finishing task, which registers everything in one
transaction. Readers never see a half-registered pack.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from attune.config import get_settings
from attune.db.engine import session_scope
from attune.jobs import queue
from attune.jobs import service as jobs
from attune.jobs.models import Job, JobKind
from attune.jobs.notify import publish_done
from attune.observability import metrics
from attune.packs import repository as packs_repo
from attune.sync import service, staging

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5
CHUNK_TASK = "packs.sync_chunk"
FINISH_TASK = "packs.sync_finish"


class _Progress:
    """Writes progress in its own short transactions, at most every half second."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        try:
            with session_scope() as s:
                jobs.set_progress(s, self.job_id, done, total)
        except Exception as exc:  # progress is best effort; the job goes on
            log.warning("progress update of job %s failed: %s", self.job_id, exc)


def _pack_of(s: Any, job: Job) -> Any:
    pack = packs_repo.get_by_id(s, job.pack_id) if job.pack_id is not None else None
    if pack is None:
        raise LookupError(f"Pack '{job.pack_ref}' no longer exists")
    return pack


class DatabaseUnavailable(Exception):
    """The database dropped or refused the connection (restart, failover, network): the
    task is retried later rather than failed, and redoes its unit of work whole."""


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite says OperationalError for mistakes too: only a busy or locked file is transient
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)
    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated


def _succeeded(s: Any, job: Job, result: dict[str, Any]) -> None:
    jobs.mark_succeeded(s, job, {**result, "job_id": str(job.id)})
    seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    metrics.record_job(job.kind, "succeeded", seconds, result)
    log.info("job %s (%s of %s) succeeded in %.2f s", job.id, job.kind, job.pack_ref, seconds or 0.0)


def _fail(job_id: uuid.UUID, exc: BaseException) -> None:
    if _transient(exc):
        log.warning("job %s: database unavailable, the task will be retried: %s", job_id, exc)
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    message = str(exc) if isinstance(exc, LookupError) else f"{type(exc).__name__}: {exc}"
    log.error("job %s failed: %s", job_id, message)
    with session_scope() as s:
        jobs.mark_failed(s, job_id, message)
        staging.drop(s, job_id)
        job = jobs.get_job(s, job_id)
        seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
        metrics.record_job(job.kind, "failed", seconds, None)


def run_job(job_id: uuid.UUID) -> dict[str, Any]:
    """Entry point of packs.sync_workflows and packs.validate_workflows."""
    settings = get_settings()
    try:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
            if jobs.is_finished(job):  # a redelivered message of a job that completed
                return {"job_id": str(job_id), "status": job.status}
            jobs.mark_running(s, job)
            kind = job.kind
    except Exception as exc:
        if _transient(exc):
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise
    status = "failed"
    try:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
            pack = _pack_of(s, job)
            progress = _Progress(job_id)
            if kind == JobKind.VALIDATE.value:
                result = service.validate_pack(s, pack, settings, progress)
            else:
                names = service.list_files(settings, pack.ref)
                force = bool(job.options.get("full"))
                cache, keys = None, None
                if names is not None and len(names) > settings.sync.chunk_size:
                    # Fan out only when there is that much to read: a re-sync that finds
                    # few changed files is cheaper in one task than in many.
                    changed = len(names)
                    if not force:
                        changed, cache, keys = service.changed_files(s, settings, pack, names)
                    if changed > settings.sync.chunk_size:
                        return _fan_out(s, job, names, settings.sync.chunk_size)
                result = service.sync_pack(s, settings, job_id, pack, progress, force, cache, keys)
            job.progress_done = job.progress_total = result.get("loaded_count", result.get("validated_count", 0))
            _succeeded(s, job, result)
            status = "succeeded"
    except Exception as exc:
        _fail(job_id, exc)
    publish_done(settings, job_id, status)
    return {"job_id": str(job_id), "status": status}


def _fan_out(s: Any, job: Job, names: list[str], size: int) -> dict[str, Any]:
    chunks = [names[i : i + size] for i in range(0, len(names), size)]
    job.chunks_total = len(chunks)
    job.progress_total = len(names)
    job.progress_done = 0
    s.add(job)
    staging.drop(s, job.id)  # a redelivered job starts its chunks afresh
    s.commit()
    for index, chunk in enumerate(chunks):
        queue.send(CHUNK_TASK, [str(job.id), index, index * size, chunk])
    return {"job_id": str(job.id), "status": "running", "chunks": len(chunks)}


def run_chunk(job_id: uuid.UUID, index: int, first_position: int, names: list[str]) -> dict[str, Any]:
    """Entry point of packs.sync_chunk: check one slice of files and stage the outcome."""
    settings = get_settings()
    try:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
            if jobs.is_finished(job):
                return {"job_id": str(job_id), "chunk": index, "status": job.status}
            pack = _pack_of(s, job)
            ctx = service.build_context(s, settings, pack)
            force = bool(job.options.get("full"))
            service.stage_chunk(s, settings, job_id, pack, ctx, index, names, first_position, force=force)
        with session_scope() as s:
            done = staging.chunks_done(s, job_id)
            s.execute(
                update(Job).where(Job.id == job_id).values(progress_done=staging.staged_count(s, job_id))  # type: ignore[arg-type]
            )
            total = jobs.get_job(s, job_id).chunks_total
    except Exception as exc:
        _fail(job_id, exc)
        publish_done(settings, job_id, "failed")
        return {"job_id": str(job_id), "chunk": index, "status": "failed"}
    if total is not None and done >= total:
        # Every chunk is staged. Two chunks finishing together may both get here:
        # the finishing step runs once (it checks the job's state under a row lock).
        queue.send(FINISH_TASK, [str(job_id)])
    return {"job_id": str(job_id), "chunk": index, "status": "staged"}


def run_finish(job_id: uuid.UUID) -> dict[str, Any]:
    """Entry point of packs.sync_finish: register every staged chunk in one transaction."""
    settings = get_settings()
    status = "failed"
    try:
        with session_scope() as s:
            job = jobs.get_job_for_update(s, job_id)
            if jobs.is_finished(job):
                return {"job_id": str(job_id), "status": job.status}
            if job.chunks_total is None or staging.chunks_done(s, job_id) < job.chunks_total:
                return {"job_id": str(job_id), "status": "waiting"}
            pack = _pack_of(s, job)
            ctx = service.build_context(s, settings, pack)
            ctx.notes = [*ctx.notes, *service.workflow_notes(settings, pack)]
            result = service.finish_sync(s, job_id, pack, ctx)
            job.progress_done = job.progress_total or result["loaded_count"]
            _succeeded(s, job, result)
            status = "succeeded"
    except Exception as exc:
        _fail(job_id, exc)
    publish_done(settings, job_id, status)
    return {"job_id": str(job_id), "status": status}


def give_up(job_id: uuid.UUID, exc: BaseException) -> None:
    """A task that ran out of retries (the database stayed away): the job is failed if the
    database takes the write by now; otherwise the stale-job sweep fails it later."""
    settings = get_settings()
    try:
        with session_scope() as s:
            jobs.mark_failed(s, job_id, f"Database unavailable, gave up after retrying: {exc}")
            staging.drop(s, job_id)
    except Exception as again:
        log.error("job %s: could not record its failure either: %s", job_id, again)
        return
    publish_done(settings, job_id, "failed")
