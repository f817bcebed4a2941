"""A bulk sync's group whose message is lost is sent again (jobs/leases.py, ``due_groups``).

A bulk sync's jobs have no lease of their own until their group's task claims them: when
the broker lost a group's message (Redis restarted before a worker took it, keeping nothing
on disk) or the sender died before sending it, nothing ever sent it again, and its jobs
stayed queued until ``celery.job_stale_seconds`` (an hour) failed them. Each group now has
a due lease under its first job, written with the jobs and removed when the group begins,
which the sweep sends again once it expires, as it does for a single job's task. Here with
a real worker; the expiry (the broker's visibility timeout) is brought forward."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text

from tests.conftest import workflow_yaml


def _packs(packs, refs: list[str]) -> None:
    from attune.db.engine import session_scope
    from attune.packs import service as packs_service
    from attune.packs.schemas import PackCreate

    with session_scope() as s:
        for ref in refs:
            packs.make(ref, {f"w{i}.yaml": workflow_yaml(f"{ref}.echo") for i in range(2)})
            packs_service.create_pack(s, PackCreate(ref=ref, label=ref, version="1"))


def _group_leases() -> list[tuple]:
    from attune.db.engine import session_scope

    with session_scope() as s:
        return [tuple(r) for r in s.execute(text("SELECT job_id, owner, args FROM job_leases WHERE task = 'group'"))]


def _statuses(ids: list[uuid.UUID]) -> dict[str, int]:
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs

    with session_scope() as s:
        found = [jobs.get_job(s, i).status for i in ids]
    return {st: found.count(st) for st in set(found)}


def test_a_group_whose_message_is_lost_is_sent_again_and_its_jobs_run(db, packs, worker, monkeypatch) -> None:
    from attune.db.engine import session_scope
    from attune.jobs import bulk, leases

    refs = [f"lost{i}" for i in range(40)]
    _packs(packs, refs)
    lost: list[list[uuid.UUID]] = []
    with monkeypatch.context() as m:
        m.setattr(bulk.send, "enqueue_group", lambda ids: lost.append(list(ids)))  # taken, then lost
        with session_scope() as s:
            _, started = bulk.start_batch(s, refs, by=None)
    ids = [j.id for j in started]
    assert len(lost) > 1  # several groups, each lost
    due = _group_leases()
    # one per group, under its first job
    assert sorted(uuid.UUID(str(r[0])) for r in due) == sorted(g[0] for g in lost)
    assert all(r[1] is None for r in due)  # unowned until its message arrives
    time.sleep(1)
    assert _statuses(ids) == {"queued": len(ids)}  # nothing runs what was never received
    with session_scope() as s:  # the broker's visibility timeout, passed
        s.execute(text("UPDATE job_leases SET expires_at = :t WHERE task = 'group'"), {"t": "2000-01-01 00:00:00"})
    leases.sweep()  # (or a sweeping worker's main process, first)
    deadline = time.monotonic() + 120
    while _statuses(ids) != {"succeeded": len(ids)}:
        assert time.monotonic() < deadline, _statuses(ids)
        time.sleep(0.2)
    assert _group_leases() == []  # each group's task removed its due lease as it began


def test_a_group_the_broker_refused_leaves_no_due_lease(db, packs, monkeypatch) -> None:
    """The broker down when the groups are sent: their jobs fail at once (as before), and
    nothing is left for the sweep to send again."""
    from attune.db.engine import session_scope
    from attune.errors import DependencyUnavailable
    from attune.jobs import bulk

    refs = [f"refused{i}" for i in range(3)]
    _packs(packs, refs)

    def down(ids):
        raise DependencyUnavailable("Broker unavailable (test): try again later")

    monkeypatch.setattr(bulk.send, "enqueue_group", down)
    with session_scope() as s:
        _, started = bulk.start_batch(s, refs, by=None)
    assert _statuses([j.id for j in started]) == {"failed": 3}
    assert _group_leases() == []


def test_a_copy_of_a_group_sent_again_finds_its_jobs_done(db, packs, monkeypatch) -> None:
    """The group's message arrived late, after its lease expired and the sweep sent a copy:
    the second to come runs nothing twice."""
    from attune.db.engine import session_scope
    from attune.jobs import bulk

    refs = [f"twice{i}" for i in range(3)]
    _packs(packs, refs)
    sent: list[list[uuid.UUID]] = []
    monkeypatch.setattr(bulk.send, "enqueue_group", lambda ids: sent.append(list(ids)))
    with session_scope() as s:
        _, started = bulk.start_batch(s, refs, by=None)
    assert sorted(j for group in sent for j in group) == sorted(j.id for j in started)
    for group in sent:
        assert bulk.run_group(group)["statuses"] == {"succeeded": len(group)}
    assert _group_leases() == []
    for group in sent:
        again = bulk.run_group(group)
        assert again["ran"] == 0 and again["statuses"] == {}
    assert _statuses([j.id for j in started]) == {"succeeded": 3}
