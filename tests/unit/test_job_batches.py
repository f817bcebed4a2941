"""A bulk sync's batch answers from its jobs; one that started no job (no pack registered)
answers from its own row (0012) as an empty, finished batch; an id no bulk sync gave is a
404, and so, as before, is nothing else."""

from __future__ import annotations

import uuid

import pytest


def test_batches_answer_from_their_jobs_or_their_row(db) -> None:
    from attune.db.engine import session_scope
    from attune.errors import NotFound
    from attune.jobs import bulk
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs import service as packs_service
    from attune.packs.schemas import PackCreate

    with session_scope() as s:
        empty, started = bulk.start_batch(s, None, by=None)  # no pack registered: no job
        assert started == []
    with session_scope() as s:
        summary = jobs.batch_summary(s, empty)
    assert (summary.jobs_total, summary.finished, summary.files_total, summary.job_ids) == (0, True, 0, [])

    # a batch written before 0012: its jobs carry its id, it has no row of its own
    older = uuid.uuid4()
    with session_scope() as s:
        pack = packs_service.create_pack(s, PackCreate(ref="batch_old", label="b", version="1"))
        made = jobs.create_jobs(s, [(pack.id, pack.ref)], JobKind.SYNC, JobTrigger.BULK, by=None, batch_id=None)
        from sqlalchemy import text

        s.execute(text("UPDATE jobs SET batch_id = :b WHERE id = :j"), {"b": older, "j": made[0].id})
    with session_scope() as s:
        summary = jobs.batch_summary(s, older)
    assert (summary.jobs_total, summary.finished, [str(i) for i in summary.job_ids]) == (1, False, [str(made[0].id)])

    with session_scope() as s, pytest.raises(NotFound):
        jobs.batch_summary(s, uuid.uuid4())
