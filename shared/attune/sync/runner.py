"""The unit-of-work edge of a sync/validate job, called by the worker's thin tasks.

A job goes queued -> running -> succeeded | failed. The sync itself and the
job's final state are committed in one transaction, so a crash in the middle
leaves the previous state and a job that runs again on redelivery.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from attune.config import get_settings
from attune.db.engine import session_scope
from attune.jobs import service as jobs
from attune.jobs.models import JobKind
from attune.jobs.notify import publish_done
from attune.packs import repository as packs_repo
from attune.sync import service

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5


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


def run_job(job_id: uuid.UUID) -> dict[str, Any]:
    settings = get_settings()
    with session_scope() as s:
        job = jobs.get_job(s, job_id)
        if jobs.is_finished(job):  # a redelivered message of a job that completed
            return {"job_id": str(job_id), "status": job.status}
        jobs.mark_running(s, job)
        kind, pack_id, pack_ref = job.kind, job.pack_id, job.pack_ref
    status = "failed"
    try:
        with session_scope() as s:
            pack = packs_repo.get_by_id(s, pack_id) if pack_id is not None else None
            if pack is None:
                raise LookupError(f"Pack '{pack_ref}' no longer exists")
            progress = _Progress(job_id)
            if kind == JobKind.SYNC.value:
                result = service.sync_pack(s, pack, settings, progress)
            else:
                result = service.validate_pack(s, pack, settings, progress)
            job = jobs.get_job(s, job_id)
            jobs.mark_succeeded(s, job, result)
            status = "succeeded"
    except Exception as exc:
        log.exception("job %s (%s of %s) failed", job_id, kind, pack_ref)
        with session_scope() as s:
            jobs.mark_failed(
                s, job_id, f"{type(exc).__name__}: {exc}" if not isinstance(exc, LookupError) else str(exc)
            )
    finally:
        publish_done(settings, job_id, status)
    return {"job_id": str(job_id), "status": status}
