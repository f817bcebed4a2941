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


def test_a_job_that_failed_before_listing_its_files_counts_none(db) -> None:
    """A batch whose job failed before listing its files (its pack deleted mid-batch, found
    from outside) finished with ``files_total`` null for good: a job that ended counts the
    files it did; one still to list them keeps the total unknown. Postgres's one-row query
    and the rows' own sum (SQLite) alike."""
    from types import SimpleNamespace

    from sqlalchemy import text

    from attune.db.engine import session_scope
    from attune.jobs import repository
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs import service as packs_service
    from attune.packs.schemas import PackCreate

    batch = uuid.uuid4()
    with session_scope() as s:
        refs = ["files_a", "files_b", "files_c"]
        made = [packs_service.create_pack(s, PackCreate(ref=r, label=r, version="1")) for r in refs]
        ids = [j.id for j in jobs.create_jobs(s, [(p.id, p.ref) for p in made], JobKind.SYNC, JobTrigger.BULK,
                                              by=None, batch_id=batch)]  # fmt: skip
        done = "UPDATE jobs SET status = :st, progress_done = :d, progress_total = :t WHERE id = :j"
        s.execute(text(done), {"st": "succeeded", "d": 3, "t": 3, "j": ids[0]})
        s.execute(text(done), {"st": "failed", "d": 0, "t": None, "j": ids[1]})  # never listed
        s.execute(text(done), {"st": "running", "d": 0, "t": None, "j": ids[2]})  # still listing
    with session_scope() as s:
        running = jobs.batch_summary(s, batch)
        rows = repository.batch(s, batch)
    assert (running.finished, running.files_done, running.files_total) == (False, 3, None)
    assert repository.progress_of_rows(rows).files_total is None
    with session_scope() as s:
        s.execute(text(done), {"st": "failed", "d": 1, "t": None, "j": ids[2]})  # failed after one file
    with session_scope() as s:
        ended = jobs.batch_summary(s, batch)
        rows = repository.batch(s, batch)
    assert (ended.finished, ended.files_done, ended.files_total) == (True, 4, 4)
    assert repository.progress_of_rows(rows).files_total == 4
    assert repository.progress_of_rows([SimpleNamespace(id=1, status="queued", progress_done=0,
                                                        progress_total=None)]).files_total is None  # fmt: skip
