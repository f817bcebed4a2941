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


def _close(ids: list[uuid.UUID]) -> None:
    """The jobs marked finished: the next test's set-up waits for running jobs to end."""
    from attune.db.engine import session_scope
    from attune.jobs import leases

    leases.let_go([(j, t) for j in ids for t in (leases.RUN, leases.FINISH, leases.chunk_task(0))])
    with session_scope() as s:
        s.execute(text("UPDATE jobs SET status = 'failed'"))


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
    _close(ids)


@pytest.mark.parametrize("task", ["chunk", "finish"])
def test_a_chunk_or_finishing_task_whose_claim_does_not_commit_renews_nothing(db, monkeypatch, task):
    """The claim itself goes through, then its commit fails (the connection dropped): the
    task is retried (DatabaseUnavailable) and this process renews nothing meanwhile."""
    from attune.db.engine import session_scope
    from attune.jobs import leases, pipeline
    from attune.jobs import service as jobs
    from attune.sync.engine import Slice

    (job_id,) = _queued_jobs(1)
    with session_scope() as s:
        jobs.repository.set_fields(s, job_id, status="running", chunks_total=0)
    real = leases.claim

    def claim_then_drop(*args, **kwargs):
        real(*args, **kwargs)
        _dropped()

    monkeypatch.setattr(leases, "claim", claim_then_drop)
    before = set(leases._mine())  # what earlier tests of this process left (tests/unit run first)
    with pytest.raises(pipeline.DatabaseUnavailable):
        if task == "chunk":
            pipeline.run_chunk(job_id, Slice(index=0, first_position=0, names=[]))
        else:
            pipeline.run_finish(job_id)
    assert leases._mine() == before
    _close([job_id])
