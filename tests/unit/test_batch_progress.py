"""A batch's progress in one row on Postgres (jobs/repository.batch_progress, issue 15: the
batch endpoint is polled while a tree syncs) against the same figures computed from the
batch's rows (what SQLite runs), for drawn statuses and progress of its jobs."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from attune.jobs import repository
from attune.jobs import service as jobs
from attune.jobs.models import JobKind, JobStatus, JobTrigger
from tests.unit.test_engine import _pack, db_engine, session

__all__ = ["db_engine", "session"]  # fixtures of test_engine, used here

job = st.tuples(st.sampled_from(list(JobStatus)), st.integers(0, 50), st.one_of(st.none(), st.integers(0, 50)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(job, max_size=8))
def test_one_row_says_what_the_rows_say(session: Session, drawn) -> None:
    s = session
    s.execute(text("DELETE FROM jobs"))
    s.execute(text("DELETE FROM packs"))
    s.commit()
    batch = uuid.uuid4()
    packs = [_pack(s, f"bp{i}") for i in range(len(drawn))]
    rows = jobs.create_jobs(
        s, [(p.id, p.ref) for p in reversed(packs)], JobKind.SYNC, JobTrigger.BULK, by=None, batch_id=batch
    )
    for r, (status, done, total) in zip(rows, drawn, strict=True):
        repository.set_fields(s, r.id, status=status.value, progress_done=done, progress_total=total)
    s.commit()
    got = repository.batch_progress(s, batch)
    assert got == repository.progress_of_rows(repository.batch(s, batch))
    if drawn:
        assert got is not None and got.job_ids == [str(r.id) for r in sorted(rows, key=lambda r: r.pack_ref)]
    assert repository.batch_progress(s, uuid.uuid4()) is None
