"""A bulk sync's group runs its cold packs' jobs with fewer round trips (issue 15): a job
whose pack had no stored state skips the replay query and reads its file cache with its
lock; the next such job is marked running by the previous one's last round trip (its own
transaction and commit saved); the "done" messages go a few at a time. Each job still ends
as it would alone: its row, its attempts, its message, its registry rows."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import workflow_yaml


def _jobs(packs, refs: list[str]) -> list[uuid.UUID]:
    """Each pack on disk (three workflows) and in the registry, with a queued bulk job whose
    lease is due, as ``bulk.start_batch`` leaves them (without sending the group)."""
    from attune.db.engine import session_scope
    from attune.jobs import leases
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs import service as packs_service
    from attune.packs.schemas import PackCreate

    ids = []
    with session_scope() as s:
        for ref in refs:
            packs.make(ref, {f"w{i}.yaml": workflow_yaml(f"{ref}.echo") for i in range(3)})
            pack = packs_service.create_pack(s, PackCreate(ref=ref, label=ref, version="1"))
            job = jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.BULK)
            leases.due(s, job.id, [(leases.RUN, leases.send.TASK_OF_KIND[JobKind.SYNC], [str(job.id)])])
            ids.append(job.id)
    return ids


def _rows(ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    from attune.db.engine import session_scope

    with session_scope() as s:
        rows = s.execute(
            text("SELECT id, status, attempts, started_at IS NOT NULL AND started_at <= finished_at, "
                 "progress_done FROM jobs")
        ).all()  # fmt: skip
    return {uuid.UUID(str(r[0])): tuple(r[1:]) for r in rows if uuid.UUID(str(r[0])) in ids}


def _times(ids: list[uuid.UUID]) -> list[tuple]:
    """(started_at, finished_at) of each job, in the group's order."""
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs

    with session_scope() as s:
        return [(j.started_at, j.finished_at) for j in (jobs.get_job(s, i) for i in ids)]


class _Count:
    def __init__(self, monkeypatch, owner, name: str) -> None:
        self.calls: list[tuple] = []
        real = getattr(owner, name)

        def counted(*args, **kwargs):
            self.calls.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


def _marks(monkeypatch) -> list[_Count]:
    """The two ways a group marks a job running on its own (Postgres's round trip, SQLite's session)."""
    from attune.jobs import bulk

    return [_Count(monkeypatch, bulk.replay, "mark_running"), _Count(monkeypatch, bulk.jobs, "mark_running_many")]


def test_cold_jobs_are_marked_running_by_the_one_before_and_replay_nothing(db, packs, monkeypatch) -> None:
    from attune.jobs import bulk
    from attune.sync import fingerprint

    refs = [f"turn{i}" for i in range(5)]
    ids = _jobs(packs, refs)
    marks = _marks(monkeypatch)
    replays = _Count(monkeypatch, fingerprint, "replay")
    out = bulk.run_group(ids)
    assert out["statuses"] == {"succeeded": 5}
    # only the first job was marked on its own; each later one by its predecessor's commit
    assert sum(len(m.calls) for m in marks) == 1
    assert replays.calls == []  # no pack had a stored state: nothing to ask
    assert _rows(ids) == dict.fromkeys(ids, ("succeeded", 1, True, 3))
    times = _times(ids)
    for before, after in itertools.pairwise(times):  # each started when the one before finished
        assert after[0] == before[1], times


def test_a_failed_job_leaves_its_successor_to_mark_itself(db, packs, monkeypatch) -> None:
    """A job that fails rolls back the statement that would have marked the next one running:
    the next one marks itself, and counts one attempt as any other."""
    from attune.jobs import bulk, pipeline

    refs = [f"fail{i}" for i in range(4)]
    ids = _jobs(packs, refs)
    marks = _marks(monkeypatch)
    real = pipeline.engine.sync_whole

    def broken(session, target, **kwargs):
        if target.pack_ref == "fail1":
            raise RuntimeError("a failure of the sync itself")
        return real(session, target, **kwargs)

    monkeypatch.setattr(pipeline.engine, "sync_whole", broken)
    out = bulk.run_group(ids)
    assert out["statuses"] == {"succeeded": 3, "failed": 1}
    assert sum(len(m.calls) for m in marks) == 2  # the first job, and the one after the failure
    times = _times(ids)
    assert times[1][1] <= times[2][0]  # the failed job's end before the next one's start
    rows = _rows(ids)
    assert rows[ids[1]][:2] == ("failed", 1)
    assert {rows[j] for j in (ids[0], ids[2], ids[3])} == {("succeeded", 1, True, 3)}


def test_a_state_stored_after_the_group_began_is_not_asked_for(db, packs, monkeypatch) -> None:
    """The group found no stored state for the pack; another sync stored one since: the full
    path runs (nothing asked of the state) and answers what the replay would have."""
    from attune.db.engine import session_scope
    from attune.jobs import bulk
    from attune.jobs import service as jobs
    from attune.sync import fingerprint

    (first,) = _jobs(packs, ["late"])
    assert bulk.run_group([first])["statuses"] == {"succeeded": 1}  # stores the pack's state
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM pack_sync_state")).scalar() == 1
        pack_id = jobs.get_job(s, first).pack_id
        job = jobs.create_job(s, jobs.repository.get_with_pack(s, first)[1], jobs.JobKind.SYNC, jobs.JobTrigger.BULK)
        bulk.leases.due(s, job.id, [(bulk.leases.RUN, bulk.send.TASK_OF_KIND[jobs.JobKind.SYNC], [str(job.id)])])
    real = fingerprint.stored
    monkeypatch.setattr(bulk.fingerprint, "stored", lambda s, ids: {})  # as if read before the state was stored
    replays = _Count(monkeypatch, fingerprint, "replay")
    assert bulk.run_group([job.id])["statuses"] == {"succeeded": 1}
    assert replays.calls == []
    with session_scope() as s:
        again = jobs.get_job(s, job.id).result
        before = jobs.get_job(s, first).result
        assert set(real(s, [pack_id])) == {pack_id}  # stored again by the full path
    assert again["unchanged_count"] == 3 and again["registered_count"] == before["registered_count"] == 3
    assert [w["changed"] for w in again["workflows"]] == [False] * 3


def test_every_job_of_a_group_is_told_done_once(db, packs, configured) -> None:
    """Each job's "done" message, sent a few at a time, reaches its waiter exactly once."""
    from attune.broker.notify import channel, redis_url
    from attune.config import get_settings
    from attune.jobs import bulk

    url = redis_url(get_settings())
    if url is None:
        pytest.skip("no Redis in this mode: waiters read the rows")
    import redis

    refs = [f"told{i}" for i in range(11)]  # more than one batch of messages
    ids = _jobs(packs, refs)
    client = redis.Redis.from_url(url)
    ps = client.pubsub()
    ps.subscribe(*[channel(j) for j in ids])
    for _ in ids:
        assert ps.get_message(timeout=5)["type"] == "subscribe"
    got: list[tuple[str, str]] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            m = ps.get_message(timeout=0.1)
            if m is not None and m["type"] == "message":
                got.append((m["channel"].decode(), m["data"].decode()))

    t = threading.Thread(target=listen)
    t.start()
    try:
        assert bulk.run_group(ids)["statuses"] == {"succeeded": 11}
        deadline = time.monotonic() + 10
        while len(got) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # and nothing more comes
    finally:
        stop.set()
        t.join()
        ps.close()
    assert sorted(got) == sorted((channel(j), "succeeded") for j in ids)


def test_a_pack_deleted_before_its_turn_leaves_the_others_as_alone(db, packs, monkeypatch) -> None:
    """The job marked running by its predecessor's success belongs to a pack deleted since:
    the statement finds no row or a job without a pack; that job fails or is gone, and the
    next one still marks itself and succeeds."""
    from attune.db.engine import session_scope
    from attune.jobs import bulk
    from attune.packs import service as packs_service

    refs = [f"gone{i}" for i in range(4)]
    ids = _jobs(packs, refs)
    real = bulk._work

    def deleting(conn, settings, job, turn, running):
        if job.pack_ref == "gone1":  # its predecessor marked it running; now its pack goes
            with session_scope() as s:
                packs_service.delete_pack(s, "gone1", by="test")
        return real(conn, settings, job, turn, running)

    monkeypatch.setattr(bulk, "_work", deleting)
    bulk.run_group(ids)
    rows = _rows(ids)
    assert rows[ids[0]] == rows[ids[2]] == rows[ids[3]] == ("succeeded", 1, True, 3)
    assert ids[1] not in rows or rows[ids[1]][0] == "failed"


def test_a_done_message_waits_at_most_its_timer(monkeypatch) -> None:
    """A job's message is sent once eight wait, or 50 ms after the first of them came,
    whatever the group does meanwhile (a long job after it does not hold it back)."""
    from attune.config import get_settings
    from attune.jobs import bulk

    sent: list[list] = []
    monkeypatch.setattr(bulk, "publish_done_many", lambda settings, batch: sent.append(list(batch)))
    done = bulk._Done(get_settings())
    first = uuid.uuid4()
    done.add(first, "succeeded")
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:  # no flush called: the timer sends it
        time.sleep(0.01)
    assert sent == [[(first, "succeeded")]]
    many = [uuid.uuid4() for _ in range(8)]
    for j in many:
        done.add(j, "failed")
    assert sent[1] == [(j, "failed") for j in many]  # eight: sent at once
    done.flush()
    time.sleep(0.1)
    assert len(sent) == 2  # nothing left, nothing sent twice
