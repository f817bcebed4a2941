"""Leases: a job's task survives the death of its worker's whole host.

Each task of a job that is due or running has a row in ``job_leases``: its task name
and arguments, its owner (host:pid:nonce of the worker process running it, or none
while it waits in the queue) and an expiry. A worker process renews the leases it
owns every ``celery.lease_renew_seconds`` from a thread, so a long task keeps its
lease however long it runs. A lease whose owner stopped renewing expires after
``celery.lease_seconds``; any live worker or the API, looking every
``celery.lease_sweep_seconds``, takes it back and sends the task again. The broker's
own late redelivery of the first message then finds the task done, or held by a
live owner, and does nothing.

A task claims its lease before it works: the claim succeeds when no one holds it,
when the holder's lease has expired, or when the holder was a process of this host
that is gone (a pool process killed: no need to wait for the expiry).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, or_, select, text, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlmodel import Session

from attune.broker import send
from attune.broker.names import TaskName
from attune.config import get_settings
from attune.db import pipeline
from attune.db.engine import session_scope
from attune.db.pipeline import Pipeline
from attune.db.types import utcnow
from attune.jobs.models import JobLease

log = logging.getLogger(__name__)
L = JobLease.__table__  # type: ignore[attr-defined]
RUN, FINISH = "run", "finish"
# a bulk sync's group task, under the group's first job: due from the batch's commit until
# the group task begins (its message lost: sent again by the sweep, like any due task)
GROUP = "group"


def chunk_task(index: int) -> str:
    return f"chunk:{index}"


# -- this process --------------------------------------------------------------------------

_owner: tuple[int, str] | None = None
_lock = threading.Lock()
_held: dict[int, set[tuple[uuid.UUID, str]]] = {}  # pid -> the tasks this process works on now


def _mine() -> set[tuple[uuid.UUID, str]]:
    return _held.setdefault(os.getpid(), set())


def owner() -> str:
    """This process's name as a lease owner (a forked pool process gets its own)."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}")
    return _owner[1]


def _gone(holder: str | None) -> bool:
    """Whether the holder is a process of this host that no longer runs."""
    if not holder:
        return True
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return holder != owner()  # a pid reused by this process after a fork
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# -- the rows ------------------------------------------------------------------------------

_CLAIM = text(
    """
    INSERT INTO job_leases (job_id, task, task_name, args, owner, expires_at)
    VALUES (:job_id, :task, :task_name, :args, :owner, :expires)
    ON CONFLICT (job_id, task) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE job_leases.owner IS NULL OR job_leases.owner = excluded.owner OR job_leases.expires_at < :now
       OR job_leases.owner = :gone
    RETURNING job_id
    """
).bindparams(bindparam("job_id", type_=L.c.job_id.type), bindparam("args", type_=L.c.args.type),
             bindparam("expires", type_=L.c.expires_at.type), bindparam("now", type_=L.c.expires_at.type))  # fmt: skip


def claim(session: Session, job_id: uuid.UUID, task: str, name: TaskName, args: list[Any]) -> bool:
    """Takes the task's lease for this process; False when a live worker holds it."""
    settings = get_settings().celery
    now = utcnow()
    params = {
        "job_id": job_id, "task": task, "task_name": name.value, "args": args, "owner": owner(),
        "expires": now + timedelta(seconds=settings.lease_seconds), "now": now, "gone": "",
    }  # fmt: skip
    claimed = session.execute(_CLAIM, params).first() is not None
    if not claimed:
        holder = session.execute(select(L.c.owner).where(L.c.job_id == job_id, L.c.task == task)).scalar()
        if holder and _gone(holder):  # a pool process of this host that was killed: no need to wait
            claimed = session.execute(_CLAIM, {**params, "gone": holder}).first() is not None
    if claimed:
        with _lock:
            _mine().add((job_id, task))
    return claimed


_CLAIM_MANY_PG = text(
    """
    INSERT INTO job_leases (job_id, task, task_name, args, owner, expires_at)
    SELECT u.job_id, u.task, u.task_name, CAST(u.args AS JSONB), :owner, :expires
    FROM unnest(CAST(:ids AS UUID[]), CAST(:tasks AS TEXT[]), CAST(:names AS TEXT[]), CAST(:args AS TEXT[]))
        AS u(job_id, task, task_name, args)
    ON CONFLICT (job_id, task) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE job_leases.owner IS NULL OR job_leases.owner = excluded.owner OR job_leases.expires_at < :now
    RETURNING job_id
    """
).bindparams(bindparam("expires", type_=L.c.expires_at.type), bindparam("now", type_=L.c.expires_at.type))


def claim_many(session: Session, tasks: list[tuple[uuid.UUID, str, TaskName, list[Any]]]) -> set[uuid.UUID]:
    """``claim`` for several jobs' tasks (a group task's), in one statement where no live
    worker holds them; returns the jobs whose task this process now holds."""
    if not tasks:
        return set()
    settings = get_settings().celery
    now = utcnow()
    expires = now + timedelta(seconds=settings.lease_seconds)
    me = owner()
    rows = [{"job_id": j, "task": t, "task_name": n.value, "args": a, "owner": me, "expires_at": expires}
            for j, t, n, a in tasks]  # fmt: skip
    if session.get_bind().dialect.name == "postgresql":  # one statement of constant text (compiled once)
        params = {"ids": [r["job_id"] for r in rows], "tasks": [r["task"] for r in rows],
                  "names": [r["task_name"] for r in rows], "args": [orjson.dumps(r["args"]).decode() for r in rows],
                  "owner": me, "expires": expires, "now": now}  # fmt: skip
        claimed = set(session.execute(_CLAIM_MANY_PG, params).scalars())
    else:
        stmt = sqlite.insert(L).values(rows)
        upsert = stmt.on_conflict_do_update(
            index_elements=[L.c.job_id, L.c.task],
            set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
            where=or_(L.c.owner.is_(None), L.c.owner == stmt.excluded.owner, L.c.expires_at < now),
        ).returning(L.c.job_id)
        claimed = set(session.execute(upsert).scalars())
    for job_id, task, name, args in tasks:  # held by others: a killed pool process of this host?
        if job_id not in claimed and claim(session, job_id, task, name, args):
            claimed.add(job_id)
    with _lock:
        _mine().update((j, t) for j, t, _, _ in tasks if j in claimed)
    return claimed


@contextmanager
def working_on(job_id: uuid.UUID, task: str) -> Iterator[None]:
    """Around a task's work: however it ends, this process stops renewing the lease; when it
    ends with an error (the task will be retried, perhaps by another process) the lease is
    let go at once, so that the retry can claim it without waiting for the expiry."""
    try:
        yield
    except BaseException:
        let_go([(job_id, task)])
        raise
    finally:
        with _lock:
            _mine().discard((job_id, task))


def forget(job_id: uuid.UUID, task: str) -> None:
    """Stops renewing a lease that the task's own transaction deleted."""
    with _lock:
        _mine().discard((job_id, task))


def let_go(tasks: Iterable[tuple[uuid.UUID, str]]) -> None:
    """Stops renewing these leases of this process and makes them expired at once, so that
    the sweep (or a retry) sends them again without waiting: a task that failed, or the
    jobs of a group task that will not get to them."""
    with _lock:
        held = [t for t in tasks if t in _mine()]
        for t in held:
            _mine().discard(t)
    if not held:
        return
    try:
        with session_scope() as s:
            s.execute(
                update(L)
                .where(tuple_(L.c.job_id, L.c.task).in_(held), L.c.owner == owner())
                .values(owner=None, expires_at=utcnow())
            )
    except Exception as exc:  # the database away: the leases expire by themselves
        log.info("could not let go of %d lease(s) (first: job %s): %s", len(held), held[0][0], exc)


def due(session: Session, job_id: uuid.UUID, tasks: Iterable[tuple[str, TaskName, list[Any]]]) -> None:
    """Records tasks about to be sent, unowned: if a message is lost (the sender died before
    sending), the lease expires after the broker's visibility timeout and the task is sent again."""
    settings = get_settings().celery
    expires = utcnow() + timedelta(seconds=settings.visibility_timeout_seconds)
    rows = [
        {"job_id": job_id, "task": task, "task_name": name.value, "args": args, "owner": None, "expires_at": expires}
        for task, name, args in tasks
    ]
    if rows:
        session.execute(delete(L).where(L.c.job_id == job_id, L.c.task.in_([r["task"] for r in rows])))
        session.execute(L.insert(), rows)


def due_groups(session: Session, groups: list[list[uuid.UUID]]) -> None:
    """``due`` for the group tasks of a bulk sync, one lease per group under its first job,
    written with the jobs: a group whose message is lost (the broker restarted before a worker
    took it, the sender died before sending) is sent again once the lease expires, where its
    jobs, which have no lease of their own until the group claims them, stayed queued until
    ``job_stale_seconds`` failed them. The group's task removes it as it begins (``begun``)."""
    expires = utcnow() + timedelta(seconds=get_settings().celery.visibility_timeout_seconds)
    rows = [
        {"job_id": ids[0], "task": GROUP, "task_name": TaskName.SYNC_GROUP.value, "args": [[str(j) for j in ids]],
         "owner": None, "expires_at": expires}
        for ids in groups if ids
    ]  # fmt: skip
    if rows:
        session.execute(L.insert(), rows)


def begun(session: Session, job_ids: Sequence[uuid.UUID]) -> None:
    """A group task has begun: its due lease goes (a copy of the message sent again after the
    lease expired finds its jobs claimed or finished, and does nothing)."""
    if job_ids:
        session.execute(_RELEASE, {"job_id": job_ids[0], "task": GROUP})


_RELEASE = text("DELETE FROM job_leases WHERE job_id = :job_id AND task = :task").bindparams(
    bindparam("job_id", type_=L.c.job_id.type)
)


def release(session: Session, job_id: uuid.UUID, task: str, *, into: Pipeline | None = None) -> None:
    """Gives the task's lease back (``into``: queued there, sent with the caller's writes)."""
    pipeline.execute(session, _RELEASE, {"job_id": job_id, "task": task}, into)


def release_all(session: Session, job_id: uuid.UUID) -> None:
    """A failed job's tasks: none is run again."""
    session.execute(delete(L).where(L.c.job_id == job_id))


def renew(session: Session) -> int:
    """Extends the leases of the tasks this process is working on; returns how many."""
    with _lock:
        held = list(_mine())
    expires = utcnow() + timedelta(seconds=get_settings().celery.lease_seconds)
    renewed = 0
    for job_id, task in held:
        result = session.execute(
            update(L).where(L.c.job_id == job_id, L.c.task == task, L.c.owner == owner()).values(expires_at=expires)
        )
        renewed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return renewed


def take_back_expired(session: Session) -> list[tuple[uuid.UUID, str, list[Any]]]:
    """The expired leases, each made unowned again with a fresh expiry (so that one sweeper
    takes each): (job id, task name, args) of the tasks to send again."""
    settings = get_settings().celery
    now = utcnow()
    stmt = select(L.c.job_id, L.c.task, L.c.task_name, L.c.args).where(L.c.expires_at < now)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    expired = session.execute(stmt.limit(500)).all()
    if not expired:
        return []
    pending = now + timedelta(seconds=settings.visibility_timeout_seconds)
    taken = []
    for job_id, task, task_name, args in expired:
        done = session.execute(
            update(L)
            .where(L.c.job_id == job_id, L.c.task == task, L.c.expires_at < now)
            .values(owner=None, expires_at=pending)
        )
        if done.rowcount:  # type: ignore[attr-defined]
            taken.append((job_id, task_name, list(args)))
    return taken


def sweep() -> int:
    """Sends again the tasks whose lease expired; returns how many. A send that fails (the
    broker is down) leaves its lease expired for the next sweep."""
    with session_scope() as s:
        taken = take_back_expired(s)
    sent = 0
    for job_id, task_name, args in taken:
        try:
            send.send(TaskName(task_name), args, task_id=f"{job_id}-again-{uuid.uuid4().hex[:6]}")
            sent += 1
        except Exception as exc:
            log.warning("could not send again task %s of job %s: %s", task_name, job_id, exc)
            with session_scope() as s:
                s.execute(update(L).where(L.c.job_id == job_id, L.c.task_name == task_name).values(expires_at=utcnow()))
    if taken:
        log.warning("sent again %d task(s) whose worker stopped renewing its lease", sent)
    return sent


# -- the thread that renews (and sweeps) ------------------------------------------------------


def _renew_mine() -> None:
    with session_scope() as s:
        renew(s)


class Keeper:
    """A daemon thread that does ``work`` every ``interval`` seconds (renewing this process's
    leases, or sweeping expired ones), whatever the task in the foreground is doing."""

    def __init__(self, work: Callable[[], object], interval: float, what: str) -> None:
        self.work, self.interval, self.what = work, interval, what
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"attune-{what}", daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.work()
            except Exception as exc:  # the database away: try again next time
                log.warning("lease %s failed: %s", self.what, exc)


_keepers: dict[tuple[int, str], Keeper] = {}


def _start(work: Callable[[], object], interval: float, what: str) -> None:
    key = (os.getpid(), what)  # once per process (again after a fork: threads do not survive it)
    with _lock:
        if key not in _keepers:
            keeper = _keepers[key] = Keeper(work, interval, what)
            keeper.thread.start()


def keep() -> None:
    """Renews this process's leases every celery.lease_renew_seconds (a pool process, from its
    first task on)."""
    _start(_renew_mine, get_settings().celery.lease_renew_seconds, "renewal")


def keep_sweeping() -> None:
    """Takes back expired leases every celery.lease_sweep_seconds (a worker's main process)."""
    _start(sweep, get_settings().celery.lease_sweep_seconds, "sweep")
