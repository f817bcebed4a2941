"""Create a job, commit, then enqueue it: the API's edge for starting work."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from attune.errors import DependencyUnavailable
from attune.jobs import queue
from attune.jobs import service as jobs
from attune.jobs.models import Job, JobKind, JobTrigger
from attune.packs import service as packs


def enqueue_committed(session: Session, job: Job) -> str | None:
    """Enqueues a committed job. On a broker failure the job is marked failed and the reason returned."""
    try:
        queue.enqueue(JobKind(job.kind), job.id)
    except DependencyUnavailable as exc:
        jobs.mark_failed(session, job.id, exc.message)
        session.commit()
        return exc.message
    return None


def start_pack_job(
    session: Session,
    pack_ref: str,
    kind: JobKind,
    trigger: JobTrigger,
    *,
    user_id: int | None,
    options: dict[str, Any] | None = None,
) -> Job:
    """For the manual endpoints: 404 for an unknown pack, 503 when the broker is down."""
    pack = packs.get_pack(session, pack_ref, keep=True)
    # Visible to the worker at once; if the database crashed before flushing it, the
    # caller got no answer and the job never ran: nothing to lose by not waiting for the disk.
    jobs.relax_durability(session)
    job = jobs.create_job(session, pack, kind, trigger, options=options, user_id=user_id)
    session.commit()
    failure = enqueue_committed(session, job)
    if failure is not None:
        raise DependencyUnavailable(failure, job_id=str(job.id))
    return job
