"""A task whose start fails after it claimed its jobs' leases (the database dropped the
connection before or while committing) leaves nothing that this process keeps renewing:
otherwise the leases never expire, the sweep never sends the jobs again, and they stay
queued for good (found by killing every connection during a bulk re-sync, issue 15)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError


def _queued_jobs(n: int) -> list[uuid.UUID]:
    from attune.db.engine import session_scope
    from attune.jobs import leases
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs import service as packs
    from attune.packs.schemas import PackCreate

    ids = []
    with session_scope() as s:
        for i in range(n):
            pack = packs.create_pack(s, PackCreate(ref=f"claimed{i}", label="c", version="1"))
            job = jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.BULK)
            leases.due(s, job.id, [(leases.RUN, leases.send.TASK_OF_KIND[JobKind.SYNC], [str(job.id)])])
            ids.append(job.id)
    return ids


def _dropped(*args, **kwargs):
    raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))


def _state(ids: list[uuid.UUID]) -> dict:
    from attune.db.engine import session_scope
    from attune.jobs import leases

    with session_scope() as s:
        rows = s.execute(text("SELECT job_id, owner FROM job_leases")).all()
        statuses = s.execute(text("SELECT status FROM jobs")).scalars().all()
    mine = leases._mine()
    return {
        "renewed": [j for j in ids if (j, leases.RUN) in mine],
        "owned": [r for r in rows if r[1] == leases.owner()],
        "statuses": set(statuses),
    }


@pytest.mark.parametrize("where", ["group", "single"])
def test_a_start_that_fails_after_its_claim_renews_nothing(db, monkeypatch, where):
    from attune.jobs import bulk, pipeline
    from attune.sync import fingerprint

    ids = _queued_jobs(3 if where == "group" else 1)
    if where == "group":
        monkeypatch.setattr(fingerprint, "stored", _dropped)  # after claim_many, before the commit
        with pytest.raises(pipeline.DatabaseUnavailable):
            bulk._begin_group(ids)
    else:
        monkeypatch.setattr(pipeline.jobs, "mark_running", _dropped)  # after claim, before the commit
        with pytest.raises(pipeline.DatabaseUnavailable):
            pipeline._begin(ids[0])
    after = _state(ids)
    assert after == {"renewed": [], "owned": [], "statuses": {"queued"}}
    monkeypatch.undo()  # the retry claims them again and they run
    if where == "group":
        claimed, _ = bulk._begin_group(ids)
        assert [j.id for j in claimed] == ids
    else:
        assert pipeline._begin(ids[0]) == "sync"
    assert len(_state(ids)["renewed"]) == len(ids)
    from attune.jobs import leases

    leases.let_go([(j, leases.RUN) for j in ids])
