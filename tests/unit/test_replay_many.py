"""A group's unchanged packs replayed together on Postgres (jobs/replay.py, issue 15): one
round trip for a run of packs, each in its own transaction, deciding in SQL what
``fingerprint.resolve_as_stored`` decides in Python, and writing the job's row as the ORM
replay writes it."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from attune.actions.models import Action
from attune.jobs import leases
from attune.jobs import service as jobs
from attune.jobs.models import JobKind, JobTrigger
from attune.jobs.replay import replay_many
from attune.sync import fingerprint
from tests.conftest import workflow_yaml
from tests.unit.test_engine import ACTION, _pack, db_engine, session, sync_whole, write_pack

__all__ = ["db_engine", "session"]  # fixtures of test_engine, used here

OUTSIDE_REFS = ["x.a", "x.b", "x.c", "rp.own", "ro.flow", "rp.self", "nope.x"]


@pytest.fixture
def pg(session: Session) -> Session:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the pipelined replay is Postgres's (SQLite replays through the ORM)")
    for table in ("pack_sync_state", "job_leases"):
        session.execute(text(f"DELETE FROM {table}"))
    session.commit()
    return session


def _job(session: Session, pack) -> uuid.UUID:
    job = jobs.create_job(session, pack, JobKind.SYNC, JobTrigger.BULK)
    session.execute(
        text("INSERT INTO job_leases (job_id, task, task_name, args, owner, expires_at) "
             "VALUES (:j, :t, 'packs.sync', '[]', 'me', now() + interval '1 hour')"),
        {"j": job.id, "t": leases.RUN},
    )  # fmt: skip
    session.commit()
    return job.id


def _state(session: Session, pack_id: int, fp: str, externals: list, loaded: int = 3) -> None:
    result = {"pack_ref": "rp", "loaded_count": loaded, "workflows": [], "job_id": None}
    session.execute(text("DELETE FROM pack_sync_state WHERE pack_id = :p"), {"p": pack_id})
    session.execute(
        text("INSERT INTO pack_sync_state (pack_id, fingerprint, externals, result, summary) "
             "VALUES (:p, :f, :e, :r, :s)"),
        {"p": pack_id, "f": fp, "e": orjson.dumps(externals).decode(), "r": orjson.dumps(result).decode(),
         "s": orjson.dumps({"loaded_count": loaded}).decode()},
    )  # fmt: skip
    session.commit()


def _row(session: Session, job_id: uuid.UUID) -> tuple:
    return tuple(
        session.execute(
            text("SELECT status, CAST(result AS TEXT), CAST(summary AS TEXT), progress_done, progress_total, "
                 "finished_at IS NOT NULL AND started_at IS NOT NULL, attempts, "
                 "EXISTS (SELECT 1 FROM job_leases WHERE job_id = :j) FROM jobs WHERE id = :j"),
            {"j": job_id},
        ).one()
    )  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    owners=st.fixed_dictionaries({r: st.sampled_from([None, "rp", "ro"]) for r in ("x.a", "x.b", "x.c", "rp.own")}),
    externals=st.lists(st.tuples(st.sampled_from(OUTSIDE_REFS), st.booleans()), max_size=5, unique_by=lambda e: e[0]),
    same_print=st.booleans(),
)
def test_decides_what_resolve_as_stored_decides(pg, tmp_path_factory, owners, externals, same_print):
    """Actions of other packs, of the pack itself or of nobody; a workflow of another pack
    and of the pack itself; stored outside calls drawn over them: the replay applies exactly
    when the fingerprint is the stored one and resolve_as_stored says so, and then finishes
    the job (its result, progress, lease gone); otherwise it leaves the job as it was."""
    s = pg
    for table in ("pack_sync_state", "job_leases", "workflow_definitions", "pack_files", "actions", "jobs", "packs"):
        s.execute(text(f"DELETE FROM {table}"))
    s.commit()
    base = tmp_path_factory.mktemp("rm")
    write_pack(base, "ro", {"flow.yaml": workflow_yaml("ro.tool")}, {"tool.yaml": ACTION})
    write_pack(base, "rp", {"self.yaml": workflow_yaml("rp.echo")}, {"echo.yaml": ACTION})
    ro, rp = _pack(s, "ro"), _pack(s, "rp")
    sync_whole(s, base, ro)
    sync_whole(s, base, rp)
    registered = set(s.execute(text("SELECT ref FROM workflow_definitions")).scalars())
    assert {"ro.flow", "rp.self"} <= registered
    packs = {"rp": rp.id, "ro": ro.id}
    for ref, owner in owners.items():
        if owner is not None:
            s.add(Action(ref=ref, pack_id=packs[owner], source_file=f"actions/{ref}.yaml", content_hash="0"))
    s.commit()
    _state(s, rp.id, "fp-now", [list(e) for e in externals])
    job_id = _job(s, rp)
    before = _row(s, job_id)
    expected = same_print and fingerprint.resolve_as_stored(
        externals, fingerprint.outside(s, rp.id, [ref for ref, _ in externals])
    )
    with s.get_bind().connect() as conn:
        (summary,) = replay_many(conn, [(job_id, rp.id, "fp-now" if same_print else "fp-other")], task=leases.RUN)
    s.expire_all()
    if expected:
        assert summary == {"loaded_count": 3}
        status, result, summ, done, total, finished, attempts, lease = _row(s, job_id)
        assert (status, done, total, finished, attempts, lease) == ("succeeded", 3, 3, True, 1, False)
        assert orjson.loads(result)["job_id"] == str(job_id) and orjson.loads(summ) == {"loaded_count": 3}
    else:
        assert summary is None
        assert _row(s, job_id) == before


def test_a_run_of_packs_each_its_own_outcome_and_transaction(pg, tmp_path):
    """Three packs in one call: the first and last replay, the middle one's state has
    another fingerprint; each answer is its own, the middle job untouched and its lease
    still held (its full sync goes on under it), and no transaction is left open."""
    s = pg
    base = tmp_path / "packs"
    packs = []
    for i in range(3):
        write_pack(base, f"run{i}", {"w.yaml": workflow_yaml(f"run{i}.echo")}, {"echo.yaml": ACTION})
        pack = _pack(s, f"run{i}")
        sync_whole(s, base, pack)
        _state(s, pack.id, f"fp{i}", [], loaded=i + 1)
        packs.append(pack)
    ids = [_job(s, p) for p in packs]
    with s.get_bind().connect() as conn:
        answers = replay_many(conn, [(ids[0], packs[0].id, "fp0"), (ids[1], packs[1].id, "stale"),
                                     (ids[2], packs[2].id, "fp2")], task=leases.RUN)  # fmt: skip
        assert not conn.in_transaction()
        raw = conn.connection.driver_connection
        assert raw.info.transaction_status == 0 and raw.autocommit is False
        # this connection's (pg_locks is the whole server's: another database's syncs hold theirs)
        locks = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).scalar()
        conn.rollback()
    assert answers == [{"loaded_count": 1}, None, {"loaded_count": 3}]
    assert locks == 0
    s.expire_all()
    assert _row(s, ids[0])[0] == "succeeded" and _row(s, ids[2])[0] == "succeeded"
    assert _row(s, ids[1])[0] == "queued" and _row(s, ids[1])[-1] is True


def test_writes_the_job_row_the_orm_replay_writes(pg, tmp_path):
    """A pack synced for real (its state stored by the sync): the pipelined replay's job row
    equals the ORM replay's (what SQLite runs), field by field."""
    from attune.jobs.bulk import _replay_orm

    s = pg
    base: Path = tmp_path / "packs"
    write_pack(base, "eq", {f"w{i}.yaml": workflow_yaml("eq.echo") for i in range(3)}, {"echo.yaml": ACTION})
    pack = _pack(s, "eq")
    sync_whole(s, base, pack)
    fp = s.execute(text("SELECT fingerprint FROM pack_sync_state WHERE pack_id = :p"), {"p": pack.id}).scalar()
    assert fp is not None
    a, b = _job(s, pack), _job(s, pack)
    with s.get_bind().connect() as conn:
        (summary,) = replay_many(conn, [(a, pack.id, fp)], task=leases.RUN)
        orm_summary = _replay_orm(conn, b, pack.id, fp)
    s.expire_all()
    assert summary == orm_summary
    ra, rb = _row(s, a), _row(s, b)
    assert ra[0] == rb[0] == "succeeded" and ra[2:] == rb[2:]
    da, db = orjson.loads(ra[1]), orjson.loads(rb[1])
    assert da.pop("job_id") == str(a) and db.pop("job_id") == str(b)
    assert da == db


def test_marks_running_as_the_orm_does_in_its_own_committed_transaction(pg, tmp_path):
    """``replay.mark_running`` (a group's job when its turn comes, one round trip) writes what
    ``jobs.mark_running_many`` writes, commits it, and leaves the connection as it was."""
    from attune.db.engine import session_scope
    from attune.jobs.replay import mark_running

    s = pg
    pack = _pack(s, "mr")
    a, b = _job(s, pack), _job(s, pack)
    s.execute(text("UPDATE jobs SET error = 'before', finished_at = now(), attempts = 2 WHERE pack_id = :p"),
              {"p": pack.id})  # fmt: skip
    s.commit()
    with s.get_bind().connect() as conn:
        mark_running(conn, a)
        assert not conn.in_transaction()
        raw = conn.connection.driver_connection
        assert raw.info.transaction_status == 0 and raw.autocommit is False
        with session_scope(conn) as orm:
            jobs.mark_running_many(orm, [b])
    s.expire_all()
    cols = "status, error, finished_at IS NULL, started_at IS NOT NULL, attempts"
    row = {j: s.execute(text(f"SELECT {cols} FROM jobs WHERE id = :j"), {"j": j}).one() for j in (a, b)}
    assert tuple(row[a]) == tuple(row[b]) == ("running", None, True, True, 3)


def test_a_groups_claim_takes_what_is_free_or_expired_or_its_own(session, tmp_path):
    """``leases.claim_many`` (one statement of constant text on Postgres, a multi-row upsert on
    SQLite): free tasks, tasks this process held, and expired ones are taken; one a live
    worker of another host holds is not; every row says who holds it, until when, and how
    to send the task again."""
    from datetime import timedelta

    from attune.broker.names import TaskName
    from attune.db.types import utcnow
    from attune.jobs.models import JobLease

    s = session
    s.execute(text("DELETE FROM job_leases"))
    pack = _pack(s, "claims")
    ids = [jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.BULK).id for _ in range(4)]
    s.commit()
    later, before = utcnow() + timedelta(hours=1), utcnow() - timedelta(minutes=1)
    held = {ids[1]: (leases.owner(), later), ids[2]: ("elsewhere:1:abc", before), ids[3]: ("elsewhere:1:abc", later)}
    for job_id, (who, until) in held.items():
        s.add(JobLease(job_id=job_id, task=leases.RUN, task_name="packs.sync", args=[], owner=who, expires_at=until))
    s.commit()
    tasks = [(j, leases.RUN, TaskName.SYNC, [str(j), {"k": i}]) for i, j in enumerate(ids)]
    claimed = leases.claim_many(s, tasks)
    s.commit()
    assert claimed == {ids[0], ids[1], ids[2]}
    rows = {
        r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(r[0]): r[1:]
        for r in s.execute(text("SELECT job_id, owner, task_name, CAST(args AS TEXT) FROM job_leases")).all()
    }
    for i, job_id in enumerate(ids[:3]):
        who, name, args = rows[job_id]
        assert who == leases.owner()
        if i == 0:  # the new row carries the task's name and arguments (the others keep theirs)
            assert name == TaskName.SYNC.value and orjson.loads(args) == [str(job_id), {"k": 0}]
    assert rows[ids[3]][0] == "elsewhere:1:abc"
    leases.let_go([(j, leases.RUN) for j in claimed])


def test_a_batchs_job_rows_are_what_the_orm_would_write(session):
    """``jobs.create_jobs`` (three arrays through unnest on Postgres, a multi-row insert on
    SQLite): every column of every row as a queued job of the batch has it."""
    s = session
    packs = [_pack(s, f"rows{i}") for i in range(3)]
    batch = uuid.uuid4()
    started = jobs.create_jobs(
        s, [(p.id, p.ref) for p in packs], JobKind.SYNC, JobTrigger.BULK, by=None, batch_id=batch
    )
    s.commit()
    rows = s.execute(
        text("SELECT id, kind, trigger, status, pack_id, pack_ref, CAST(options AS TEXT), progress_done, "
             "progress_total, result, summary, error, attempts, chunks_total, batch_id, created_by, started_by, "
             "created_at IS NOT NULL, started_at, finished_at FROM jobs WHERE pack_ref LIKE 'rows%' ORDER BY pack_ref")
    ).all()  # fmt: skip
    assert len(rows) == 3
    for row, job, pack in zip(rows, started, packs, strict=True):
        job_id = row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(row[0])
        batch_id = row[14] if isinstance(row[14], uuid.UUID) or row[14] is None else uuid.UUID(row[14])
        assert job_id == job.id and batch_id == batch
        assert tuple(row[1:6]) == ("sync", "bulk", "queued", pack.id, pack.ref)
        assert orjson.loads(row[6]) == {}
        assert tuple(row[7:14]) == (0, None, None, None, None, 0, None)
        assert (row[15], row[16], row[17], row[18], row[19]) == (None, None, True, None, None)
        assert (job.status, job.attempts, job.result, job.batch_id) == ("queued", 0, None, batch)
