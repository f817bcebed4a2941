"""What happens after a pack is saved: auto-sync (SPEC section 2).

The router writes the pack and its auto-sync job in one transaction, commits,
then calls ``after_commit``: a worker never sees a job for a pack that does
not exist yet, and a broker outage never fails the pack operation.
"""

from __future__ import annotations

from sqlmodel import Session

from attune.jobs import service as jobs
from attune.jobs.models import Job, JobKind, JobTrigger
from attune.packs.models import Pack
from attune_api.dispatch import enqueue_committed


def auto_sync_job(session: Session, pack: Pack, user_id: int | None) -> Job:
    return jobs.create_job(
        session,
        pack,
        JobKind.SYNC,
        JobTrigger.AUTO,
        options={"skip_validation_errors": True},
        user_id=user_id,
    )


def after_commit(session: Session, job: Job) -> str:
    """Enqueues the auto-sync; returns the sentence the response message ends with."""
    failure = enqueue_committed(session, job)
    if failure is not None:
        return f"; workflow auto-sync could not be queued ({failure}), job {job.id} failed"
    return f"; workflow auto-sync started (job {job.id})"
