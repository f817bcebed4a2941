"""A job no worker will finish is eventually marked failed, never left running."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta


def _job(status: str, age_s: int) -> str:
    from attune.db.engine import session_scope
    from attune.db.types import utcnow
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs import service as packs
    from attune.packs.schemas import PackCreate

    with session_scope() as s:
        pack = (
            packs.get_pack(s, "stale")
            if packs.all_refs(s)
            else packs.create_pack(s, PackCreate(ref="stale", label="s", version="1"))
        )
        job = jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.MANUAL)
        job.status = status
        job.created_at = utcnow() - timedelta(seconds=age_s)
        return str(job.id)


def _status(job_id: str) -> tuple[str, str | None]:
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs

    with session_scope() as s:
        job = jobs.get_job(s, uuid.UUID(job_id))
        return job.status, job.error


def test_sweep_marks_only_stale_jobs(db):
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs

    old_running = _job("running", 7200)
    old_queued = _job("queued", 7200)
    fresh = _job("running", 10)
    done = _job("succeeded", 7200)
    with session_scope() as s:
        failed = {str(i) for i in jobs.fail_stale_jobs(s, 3600)}
    assert failed == {old_running, old_queued}
    status, error = _status(old_running)
    assert status == "failed" and "No worker finished this job within 3600 s" in error
    assert _status(fresh)[0] == "running"
    assert _status(done)[0] == "succeeded"


def test_the_api_sweeps_in_the_background(db, monkeypatch):
    from fastapi.testclient import TestClient

    from attune.config import get_settings
    from attune_api.main import create_app

    monkeypatch.setattr(get_settings().celery, "sweep_interval_seconds", 0.05)
    monkeypatch.setattr(get_settings().celery, "job_stale_seconds", 60)
    stale = _job("running", 600)
    with TestClient(create_app()):
        deadline = time.monotonic() + 10
        while _status(stale)[0] != "failed" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _status(stale)[0] == "failed"
