"""Bulk syncs (POST /api/v1/packs/sync): many packs' jobs started together and run in
groups, several packs per worker task (issue 15).

    start_batch -> job rows in one statement -> groups of ids -> broker
    -> run_group: leases of the group in one statement -> each job in turn:
       _replay (an unchanged small pack: its stored result, sync/fingerprint.py)
       or pipeline.work (the sync, as a single job's task runs it)

Each pack keeps its own job, transaction, lock, result and "done" message; the group's
leases are renewed while it runs, and each job that a dead worker did not finish is sent
again on its own (jobs/leases.py).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from attune.access.principal import Principal
from attune.broker import send
from attune.broker.notify import publish_done_many
from attune.config import Settings, get_settings
from attune.db.engine import get_engine, session_scope
from attune.db.types import utcnow
from attune.errors import DependencyUnavailable
from attune.jobs import leases, replay
from attune.jobs import service as jobs
from attune.jobs.models import FINISHED, JobKind, JobStatus, JobTrigger
from attune.jobs.pipeline import DatabaseUnavailable, Turn, fail, marks_next, transient, work
from attune.jobs.repository import Queued
from attune.observability import metrics
from attune.packs import service as packs
from attune.sync import engine, fingerprint, store
from attune.sync.schemas import summarise
from attune.workflows.loader import resolve_pack_dir

log = logging.getLogger(__name__)


def start_batch(
    session: Session, refs: Sequence[str] | None, *, by: Principal | None
) -> tuple[uuid.UUID, list[SimpleNamespace]]:
    """One sync job per pack (every pack when ``refs`` is None), sharing a batch id, written
    together and sent to the workers in groups (``sync.group_size`` packs per task at most,
    fewer when the batch is small so that every worker gets a share). An unknown ref is a
    NotFound before anything starts."""
    wanted = packs.all_refs(session) if refs is None else list(dict.fromkeys(refs))
    targets = packs.pack_ids(session, wanted, keep=True)
    batch_id = uuid.uuid4()
    started = jobs.create_jobs(session, targets, JobKind.SYNC, JobTrigger.BULK, by=by, batch_id=batch_id)
    size = group_size(len(started), get_settings().sync.group_size)
    groups = [started[start:end] for start, end in group_bounds(len(started), size)]
    leases.due_groups(session, [[j.id for j in group] for group in groups])
    session.commit()
    for group in groups:
        try:
            send.enqueue_group([j.id for j in group])
        except DependencyUnavailable as exc:
            for job in group:
                jobs.mark_failed(session, job.id, exc.message)
                job.status, job.error, job.finished_at = JobStatus.FAILED.value, exc.message, utcnow()
            leases.begun(session, [j.id for j in group])  # nothing left to send again
            session.commit()
    return batch_id, started


def group_size(jobs_total: int, most: int) -> int:
    """Packs per task of a bulk sync: at most ``most``, and at least 16 tasks when the batch
    allows it. An unchanged small pack takes about a millisecond of a worker and a group's
    own costs (its task, its claim, a connection) about ten: groups of 50 had a tree of 2,000
    unchanged packs re-synced in 0.093x the floor of its files, groups of 25 in 0.109x."""
    return max(1, min(most, -(-jobs_total // 16)))


def group_bounds(jobs_total: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of each group: ``size`` jobs each, except the last eighth of a large
    batch, in groups a quarter that size: the workers run out of work together instead of
    one finishing a whole group alone (in a cold tree of 2,000 packs, the last group kept
    one worker busy for about half a second while the other had nothing left)."""
    tail = jobs_total // 8 if jobs_total // 8 >= 2 * size else 0
    small = max(1, size // 4)
    head = jobs_total - tail
    bounds = [(start, min(start + size, head)) for start in range(0, head, size)]
    bounds += [(start, min(start + small, jobs_total)) for start in range(head, jobs_total, small)]
    return bounds


def _begin_group(job_ids: Sequence[uuid.UUID]) -> tuple[list[Queued], dict[int, fingerprint.Stored]]:
    """``_begin`` for the jobs of a group task, in one transaction: those this process now
    holds, in the group's order, and the stored fingerprints of their packs."""
    try:
        with session_scope() as s:
            found = jobs.states(s, job_ids)
            # not those whose pack was deleted since (the job row went with it), nor the finished
            # ones, nor those split into chunks (their own leases keep them)
            due = [found[j] for j in job_ids if j in found]
            due = [j for j in due if j.status not in FINISHED and j.chunks_total is None]
            tasks = [(j.id, leases.RUN, send.TASK_OF_KIND[JobKind(j.kind)], [str(j.id)]) for j in due]
            held = leases.claim_many(s, tasks)
            leases.begun(s, job_ids)  # the group's due lease: its message arrived
            claimed = [j for j in due if j.id in held]  # queued until its turn (``_started``)
            prints = fingerprint.stored(s, [j.pack_id for j in claimed if j.pack_id is not None])
    except Exception as exc:
        # no task works on what it may have claimed (its commit may even have landed): not
        # renewed by this process any longer, let go if the database answers, else expiring
        leases.let_go([(j, leases.RUN) for j in job_ids])
        if transient(exc):
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise
    leases.keep()
    return claimed, prints


def run_group(job_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """The task of a bulk sync's group of packs: each job in turn, as ``run`` would (its own
    transaction, lock, result and "done" message); consecutive unchanged packs are replayed
    together (``_replay_run``: each still in its own transaction). Every job's lease is
    taken at the start and renewed while the group runs: if this worker's host dies, each
    job that did not finish is sent again on its own when its lease expires."""
    settings = get_settings()
    claimed, prints = _begin_group(job_ids)
    statuses: dict[str, int] = {}
    done = 0
    running: uuid.UUID | None = None  # the job that the previous one's success marked running
    told = _Done(settings)

    def count(status: str | None) -> None:
        statuses[status or "running"] = statuses.get(status or "running", 0) + 1

    try:
        with get_engine().connect() as conn:  # one checkout for the group's transactions
            run: list[tuple[Queued, str]] = []
            for i, job in enumerate(claimed):
                fprint = _unchanged(settings, job, prints.get(job.pack_id or 0))
                if fprint is not None:
                    run.append((job, fprint))
                if run and (fprint is None or i == len(claimed) - 1):
                    told.flush()
                    for status in _replay_run(conn, settings, run):
                        count(status)
                    done += len(run)
                    run = []
                if fprint is None:
                    # the next job, when it has no stored state (so no replay: it runs the
                    # full path too), is marked running by this one's last round trip
                    nxt = claimed[i + 1] if i + 1 < len(claimed) else None
                    then = nxt.id if nxt is not None and (nxt.pack_id or 0) not in prints else None
                    turn = Turn(unstored=(job.pack_id or 0) not in prints, then=then)
                    status = _work(conn, settings, job, turn, running)
                    running = then if marks_next(job.kind, status) else None
                    done += 1
                    if status is not None:
                        told.add(job.id, status)
                    count(status)
    finally:
        told.flush()
        if done < len(claimed):  # a retry (the database away) or another worker takes them
            leases.let_go([(j.id, leases.RUN) for j in claimed[done:]])
    return {"jobs": len(job_ids), "ran": len(claimed), "statuses": statuses}


class _Done:
    """The "done" messages of a group's jobs, a few per round trip to Redis (one per job
    cost a worker 0.2 ms per small pack): sent when eight wait, when the first has waited
    50 ms (a timer: a long job after it does not hold it back), before a run of replays
    and when the group ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pending: list[tuple[uuid.UUID, str]] = []
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def add(self, job_id: uuid.UUID, status: str) -> None:
        with self.lock:
            self.pending.append((job_id, status))
            full = len(self.pending) >= 8
            if not full and self.timer is None:
                self.timer = threading.Timer(0.05, self.flush)
                self.timer.daemon = True
                self.timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.cancel()  # (a no-op in the timer's own thread)
        if batch:
            publish_done_many(self.settings, batch)


def _work(conn: Connection, settings: Settings, job: Queued, turn: Turn, running: uuid.UUID | None) -> str | None:
    """A group's job that is not replayed: marked running when its turn comes (the replayed
    ones go from queued to succeeded in one write; ``running``: the job the previous one
    marked so), then ``pipeline.work``."""
    try:
        if running != job.id and conn.dialect.name == "postgresql":
            replay.mark_running(conn, job.id)  # one round trip
        elif running != job.id:
            with session_scope(conn) as s:
                jobs.mark_running_many(s, [job.id])
    except Exception as exc:
        if transient(exc):
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise
    return work(job.id, job.kind, settings, bind=conn, turn=turn)


def _unchanged(settings: Settings, job: Queued, stored: fingerprint.Stored | None) -> str | None:
    """The fingerprint of a group's pack whose folders still have the one its last sync
    stored (and whose outside calls resolved as stored when the group began): a pack to
    replay. None: ``pipeline.work`` runs its sync."""
    if stored is None or job.kind != JobKind.SYNC.value or job.options or job.active_version_id is not None:
        return None
    root = resolve_pack_dir(settings.packs_base_dir, job.pack_ref)
    reason, folders = engine.inspect_folders(root)
    now = fingerprint.compute(root, folders, max_file_size=settings.max_file_size) if reason is None else None
    return now if now is not None and now == stored.fingerprint and stored.holds else None


def _replay_run(conn: Connection, settings: Settings, run: list[tuple[Queued, str]]) -> list[str | None]:
    """Consecutive unchanged packs of a group: their stored results, each in a transaction
    that holds the pack's lock and writes the job's row only (sync/fingerprint.py), all in
    one round trip on Postgres; those whose state no longer holds run the full sync."""
    answers: list[dict[str, Any] | None] | None = None
    if conn.dialect.name == "postgresql" and len(run) > 1:
        items = [(job.id, job.pack_id or 0, fprint) for job, fprint in run]
        try:
            answers = replay.replay_many(conn, items, task=leases.RUN)
        except Exception as exc:  # each on its own below: its own error, its own outcome
            log.warning("a group's replay of %d unchanged packs failed (%s); one by one instead", len(run), exc)
    statuses: list[str | None] = []
    finished: list[tuple[uuid.UUID, str]] = []
    for k, (job, fprint) in enumerate(run):
        status = _replay(conn, job, fprint) if answers is None else _replayed(job, answers[k])
        if status is None:
            status = _work(conn, settings, job, Turn(), None)
        if status is not None:
            finished.append((job.id, status))
        statuses.append(status)
    publish_done_many(settings, finished)
    return statuses


def _replayed(job: Queued, summary: dict[str, Any] | None) -> str | None:
    if summary is None:
        return None  # the lease is still this process's: the full sync goes on under it
    leases.forget(job.id, leases.RUN)  # released by the transaction
    metrics.record_replayed(job.kind, summary)
    return JobStatus.SUCCEEDED.value


def _replay(conn: Connection, job: Queued, fprint: str) -> str | None:
    """One unchanged pack's replay (``replay.replay_many`` of one on Postgres, the ORM on
    SQLite); a failure fails the job as a sync's failure would."""
    assert job.pack_id is not None  # a pack's stored fingerprint was found
    try:
        if conn.dialect.name == "postgresql":
            summary = replay.replay_many(conn, [(job.id, job.pack_id, fprint)], task=leases.RUN)[0]
        else:
            summary = _replay_orm(conn, job.id, job.pack_id, fprint)
    except Exception as exc:
        leases.let_go([(job.id, leases.RUN)])
        fail(job.id, exc)
        return JobStatus.FAILED.value
    return _replayed(job, summary)


def _replay_orm(conn: Connection, job_id: uuid.UUID, pack_id: int, fprint: str) -> dict[str, Any] | None:
    """``replay.replay`` through the ORM (SQLite: the embedded mode)."""
    with session_scope(conn) as s:
        store.lock_pack(s, pack_id)
        result = fingerprint.replay(s, pack_id, fprint)  # again, under the lock
        if result is None:
            return None
        result.job_id = job_id
        jobs.mark_running_many(s, [job_id])  # started (and counted an attempt) as it finishes
        jobs.mark_replayed(s, job_id, result)
        leases.release(s, job_id, leases.RUN)
    return summarise(result)
