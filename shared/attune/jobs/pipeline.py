"""A job's life, in one module: start it, run it on a worker, finish it, wait for it.

    HTTP router -> start -> (commit) -> broker -> worker task -> run
      -> sync.engine (cache, checker, store) -> finish -> notify -> wait (the request)

A job goes queued -> running -> succeeded | failed. A pack with at most
``sync.chunk_size`` files to read is synced by ``run`` in one transaction. A larger
one is split: ``run`` enqueues one ``run_chunk`` per slice of files (each stages its
outcome in its own transaction, redone whole on redelivery); the chunk that completes
the set enqueues ``finish``, which registers everything in one transaction. Readers
never see a half-registered pack.

Routers and Celery tasks make one call here; the sync engine under it knows nothing
of jobs, queues or notifications.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session

from attune.access.principal import Principal
from attune.broker import send
from attune.broker.names import TaskName
from attune.broker.notify import publish_done, wait_for_message
from attune.bundles import push
from attune.config import Settings, get_settings
from attune.db.engine import get_engine, read_only, session_scope
from attune.db.pipeline import Pipeline
from attune.errors import AttuneError, DependencyUnavailable, NotFound
from attune.jobs import leases
from attune.jobs import service as jobs
from attune.jobs.models import FINISHED, Job, JobKind, JobStatus, JobTrigger
from attune.observability import metrics
from attune.packs import repository as packs_repo
from attune.packs import service as packs
from attune.packs.models import Pack
from attune.sync import engine, store
from attune.sync import plan as dry_run
from attune.sync.engine import Slice, Target
from attune.sync.schemas import JobResult

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5


class PackGone(NotFound):
    """The job's pack was deleted while the job waited or ran."""

    def __init__(self, pack_ref: str, **extra: Any) -> None:
        super().__init__(f"Pack '{pack_ref}' not found", **extra)


class JobFailed(AttuneError):
    """The job ended failed: its stored error says why (never SQL or a traceback)."""

    status_code = 500


class DatabaseUnavailable(Exception):
    """The database dropped or refused the connection (restart, failover, network): the
    task is retried later rather than failed, and redoes its unit of work whole."""


# -- starting jobs (the API's side) --------------------------------------------------------


def add(
    session: Session,
    pack: Pack,
    *,
    kind: JobKind,
    trigger: JobTrigger,
    by: Principal | None,
    options: dict | None = None,
) -> Job:
    """A queued job row in the caller's transaction; ``enqueue`` it after the commit."""
    return jobs.create_job(session, pack, kind, trigger, options=options, by=by)


def add_auto_sync(session: Session, pack: Pack, *, by: Principal | None) -> Job:
    """The sync that follows a pack's create or update (SPEC section 2: never fails the pack)."""
    options = {"skip_validation_errors": True}
    return add(session, pack, kind=JobKind.SYNC, trigger=JobTrigger.AUTO, by=by, options=options)


def enqueue(session: Session, job: Job) -> str | None:
    """Enqueues a committed job. When the broker cannot take it, the job is marked failed
    and the reason returned."""
    try:
        send.enqueue(JobKind(job.kind), job.id)
    except DependencyUnavailable as exc:
        jobs.mark_failed(session, job.id, exc.message)
        session.commit()
        return exc.message
    return None


def start(pack_ref: str, *, kind: JobKind, by: Principal | None, options: dict | None = None) -> uuid.UUID:
    """A manual job, in its own short transaction: NotFound for an unknown pack,
    DependencyUnavailable when the broker is down."""
    with Session(get_engine(), expire_on_commit=False) as session:
        pack = packs.get_pack(session, pack_ref, keep=True)  # not deleted before the job row is written
        # Visible to the worker at once; if the database crashed before flushing it, the
        # caller got no answer and the job never ran: nothing to lose by not waiting for the disk.
        jobs.relax_durability(session)
        job = add(session, pack, kind=kind, trigger=JobTrigger.MANUAL, by=by, options=options)
        session.commit()
        failure = enqueue(session, job)
    if failure is not None:
        raise DependencyUnavailable(failure, job_id=str(job.id))
    return job.id


# -- waiting for a job (the API's side) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    error: str | None
    result_json: str | None  # the stored result as JSON text, never decoded on the way out
    pack_exists: bool

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def outcome(job_id: uuid.UUID) -> Outcome:
    with Session(read_only(get_engine()), expire_on_commit=False) as s:
        return Outcome(*jobs.outcome(s, job_id))


async def wait(job_id: uuid.UUID, timeout: float, redis: Any) -> Outcome:
    """Waits up to ``timeout`` seconds for the job to finish, without blocking the event
    loop (the worker's "done" message, or the row re-read); returns its outcome then."""

    async def is_done() -> bool:
        return (await asyncio.to_thread(outcome, job_id)).finished

    await wait_for_message(redis, job_id, timeout, is_done)
    return await asyncio.to_thread(outcome, job_id)


def raise_if_failed(found: Outcome, *, pack_ref: str, job_id: uuid.UUID, verb: str) -> None:
    if found.status != JobStatus.FAILED.value:
        return
    if not found.pack_exists:  # deleted while its job waited or ran: what the caller asked for is gone
        raise PackGone(pack_ref, job_id=str(job_id))
    raise JobFailed(f"Failed to {verb} workflows: {found.error}", job_id=str(job_id))


# -- running jobs (the worker's side) -------------------------------------------------------


class _Progress:
    """Writes progress in its own short transactions, at most every half second.

    Not on SQLite: the job's own transaction holds the database's one write lock, so a
    second writer would wait for it (the busy timeout, 60 s) at every step."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self.last = 0.0
        self.enabled = get_engine().dialect.name != "sqlite"

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (done < total and now - self.last < PROGRESS_INTERVAL_S):
            return
        self.last = now
        try:
            with session_scope() as s:
                jobs.set_progress(s, self.job_id, done, total)
        except Exception as exc:  # progress is best effort; the job goes on
            log.warning("progress update of job %s failed: %s", self.job_id, exc)


def _target(s: Session, settings: Settings, job: Job, pack: Pack | None = None) -> Target:
    """What the job syncs (``pack``: the job's pack when the caller read it, else read here)."""
    if pack is None and job.pack_id is not None:
        pack = packs_repo.get_by_id(s, job.pack_id)
    if pack is None:
        raise PackGone(job.pack_ref)
    author = "auto" if job.trigger == JobTrigger.AUTO.value else job.started_by or "unknown"
    target = Target.of(settings, job_id=job.id, pack=pack, options=job.options, author=author)
    pushed = push.PushRequest.of(job.options).version_id if job.kind == JobKind.PUSH.value else None
    source = push.source_root(s, settings, pack, pushed)  # a pushed version: this worker's copy
    if source is None:
        return target
    changes = pushed is not None and pack.active_version_id != pushed
    return push.retarget(target, *source, source_changes=changes)


def transient(exc: BaseException) -> bool:
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True  # the driver's own, unwrapped (jobs/replay.py works on the driver's connection)
    if not isinstance(exc, DBAPIError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite says OperationalError for mistakes too: only a busy or locked file is transient
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)
    return isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated


def _public_error(exc: BaseException) -> str:
    """What the job row (and so the API) says of a failure: a domain error's sentence, else
    only the kind of failure; the details (SQL, parameters, traceback) go to the log."""
    if isinstance(exc, AttuneError):
        return exc.message
    return f"Internal error in the worker ({type(exc).__name__}); the worker's log has the details"


def _duration(job: Job) -> float | None:
    return (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None


def finish(
    s: Session,
    job: Job,
    result: JobResult,
    *,
    task: str,
    progress: tuple[int, int | None],
    tail: Pipeline | None = None,
) -> None:
    """Stores the job's result and progress (done, total), marks it succeeded and gives back
    the lease of the task that did it, with what the job left in ``tail`` (its pack's stored
    state), and commits: one round trip on Postgres (elsewhere the caller's scope commits)."""
    result.job_id = job.id
    tail = Pipeline(s) if tail is None else tail
    jobs.mark_succeeded(s, job, result, into=tail, progress=progress)
    leases.release(s, job.id, task, into=tail)
    tail.run_and_commit()
    metrics.record_job(job.kind, "succeeded", _duration(job), result)
    log.info("job %s (%s of %s) succeeded in %.2f s", job.id, job.kind, job.pack_ref, _duration(job) or 0.0)


def fail(job_id: uuid.UUID, exc: BaseException) -> None:
    if transient(exc):
        log.warning("job %s: database unavailable, the task will be retried: %s", job_id, exc)
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if isinstance(exc, AttuneError):
        log.error("job %s failed: %s", job_id, exc.message)
    else:
        log.error("job %s failed", job_id, exc_info=exc)
    with session_scope() as s:
        jobs.mark_failed(s, job_id, _public_error(exc))
        store.drop(s, job_id)
        leases.release_all(s, job_id)
        job = jobs.get_job(s, job_id)
        if job.kind == JobKind.PUSH.value:
            push.failed(s, push.PushRequest.of(job.options).version_id)
        metrics.record_job(job.kind, "failed", _duration(job), None)


def _begin(job_id: uuid.UUID) -> str | None:
    """Takes the job's lease and marks it running; None when there is nothing to do: the job
    finished (a message redelivered late), or a live worker runs it."""
    try:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
            if jobs.is_finished(job) or job.chunks_total is not None:
                return None  # finished, or split into chunks that their own leases keep
            if not leases.claim(s, job_id, leases.RUN, send.TASK_OF_KIND[JobKind(job.kind)], [str(job_id)]):
                log.info("job %s: another worker holds it; this delivery does nothing", job_id)
                return None
            jobs.mark_running(s, job)
            leases.keep()
            return job.kind
    except Exception as exc:
        leases.let_go([(job_id, leases.RUN)])  # claimed perhaps, and no task works on it: never renewed
        if transient(exc):
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise


def run(job_id: uuid.UUID) -> dict[str, Any]:
    """The task of a sync, validate or plan job."""
    settings = get_settings()
    kind = _begin(job_id)
    if kind is None:
        return {"job_id": str(job_id), "status": "nothing to do"}
    status = work(job_id, kind, settings)
    if status is not None:
        publish_done(settings, job_id, status)
        return {"job_id": str(job_id), "status": status}
    return {"job_id": str(job_id), "status": "running"}  # split into chunks


@dataclass(frozen=True, slots=True)
class Turn:
    """What a bulk sync's group tells ``work`` of a job: that its pack had no stored state
    when the group began (no replay to ask for), and the group's next job, marked running
    by this sync's last round trip and committed with its success (``marks_next``)."""

    unstored: bool = False
    then: uuid.UUID | None = None


def marks_next(kind: str, status: str | None) -> bool:
    """Whether ``work`` with a Turn's ``then`` marked that job running: a sync that succeeded
    whole (its last writes carried the statement; a failure rolled it back)."""
    return kind == JobKind.SYNC.value and status == JobStatus.SUCCEEDED.value


def work(
    job_id: uuid.UUID, kind: str, settings: Settings, *, bind: Connection | None = None, turn: Turn = Turn()
) -> str | None:
    """Runs a job whose lease this process holds: its status at the end (None: split into
    chunks, which finish it). A transient database failure raises DatabaseUnavailable.
    ``bind``: the connection of its transaction (a group's), else one from the pool."""
    status = JobStatus.FAILED.value
    tail: Pipeline | None = None  # the sync's last writes, sent with the job's
    try:
        with leases.working_on(job_id, leases.RUN), session_scope(bind) as s:
            job, pack = jobs.get_job_with_pack(s, job_id)
            target = _target(s, settings, job, pack)
            if turn.unstored:
                target = dataclasses.replace(target, replay=False)
            if kind == JobKind.VALIDATE.value:
                checked = engine.validate(s, target, progress=_Progress(job_id))
                count = checked.validated_count
                result: JobResult = checked
            elif kind == JobKind.PLAN.value:
                planned = dry_run.plan(s, target, progress=_Progress(job_id))
                count = planned.loaded_count
                result = planned
            else:
                plan = engine.decide_fan_out(s, target, chunk_size=settings.sync.chunk_size)
                if isinstance(plan, list):
                    _fan_out(s, job, target, plan)
                    return None
                progress = _Progress(job_id)
                if kind == JobKind.PUSH.value:
                    request = push.PushRequest.of(job.options)
                    whole = functools.partial(engine.sync_whole, s, target, prefetched=plan, progress=progress)
                    result = push.run(s, target, request, whole)
                    count = result.plan.loaded_count
                else:
                    tail = Pipeline(s)
                    if turn.then is not None:
                        jobs.mark_running_into(tail, turn.then, after=job_id)
                    result = engine.sync_whole(s, target, prefetched=plan, progress=progress, tail=tail)
                    count = result.loaded_count
            # the ORM's job is told its progress with its success: nothing left for a flush
            finish(s, job, result, task=leases.RUN, progress=(count, count), tail=tail)
            status = JobStatus.SUCCEEDED.value
    except Exception as exc:
        fail(job_id, exc)
    return status


def _chunk_args(job_id: uuid.UUID, part: Slice) -> list[Any]:
    return [str(job_id), part.index, part.first_position, part.names]


def _fan_out(s: Session, job: Job, target: Target, slices: list[Slice]) -> dict[str, Any]:
    # a pushed version's copies differ from worker to worker: only their content is the same
    folders = "" if target.sha256 else engine.inspect_folders(target.root)[1]
    job.chunks_total = len(slices)
    job.progress_total = sum(len(p.names or ()) for p in slices)
    job.progress_done = 0
    job.options = {**job.options, "folders": folders}  # every chunk checks they are still the same
    s.add(job)
    store.drop(s, job.id)  # a redelivered job starts its chunks afresh
    leases.release(s, job.id, leases.RUN)
    chunks = [(leases.chunk_task(p.index), TaskName.SYNC_CHUNK, _chunk_args(job.id, p)) for p in slices]
    leases.due(s, job.id, chunks)
    s.commit()
    for _, name, args in chunks:
        send.send(name, args)
    return {"job_id": str(job.id), "status": "running", "chunks": len(slices)}


def run_chunk(job_id: uuid.UUID, part: Slice) -> dict[str, Any]:
    """The task of one slice of a large pack's sync: check its files and stage the outcome."""
    settings = get_settings()
    task = leases.chunk_task(part.index)
    try:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
            if jobs.is_finished(job) or store.chunk_done(s, job_id, part.index):
                return {"job_id": str(job_id), "chunk": part.index, "status": "nothing to do"}
            if not leases.claim(s, job_id, task, TaskName.SYNC_CHUNK, _chunk_args(job_id, part)):
                return {"job_id": str(job_id), "chunk": part.index, "status": "held by another worker"}
            s.commit()
            leases.keep()
            with leases.working_on(job_id, task):
                engine.stage_chunk(s, _target(s, settings, job), part=part)
                leases.release(s, job_id, task)
                s.commit()
        with session_scope() as s:
            done = store.chunks_done(s, job_id)
            staged = store.staged_count(s, job_id)
            s.execute(update(Job).where(Job.id == job_id).values(progress_done=staged))  # type: ignore[arg-type]
            total = jobs.get_job(s, job_id).chunks_total
            if total is not None and done >= total:
                leases.due(s, job_id, [(leases.FINISH, TaskName.SYNC_FINISH, [str(job_id)])])
    except Exception as exc:
        leases.let_go([(job_id, task)])  # claimed perhaps (its commit failing): never renewed idle
        fail(job_id, exc)
        publish_done(settings, job_id, JobStatus.FAILED.value)
        return {"job_id": str(job_id), "chunk": part.index, "status": "failed"}
    if total is not None and done >= total:
        # Every chunk is staged. Two chunks finishing together may both get here:
        # the finishing step runs once (it checks the job's state under a row lock).
        send.send(TaskName.SYNC_FINISH, [str(job_id)])
    return {"job_id": str(job_id), "chunk": part.index, "status": "staged"}


def run_finish(job_id: uuid.UUID) -> dict[str, Any]:
    """The task that registers every staged chunk of a large pack's sync in one transaction."""
    settings = get_settings()
    status = JobStatus.FAILED.value
    try:
        with session_scope() as s:
            job = jobs.get_job(s, job_id)
            if jobs.is_finished(job):
                return {"job_id": str(job_id), "status": job.status}
            if job.chunks_total is None or store.chunks_done(s, job_id) < job.chunks_total:
                return {"job_id": str(job_id), "status": "waiting"}
            if not leases.claim(s, job_id, leases.FINISH, TaskName.SYNC_FINISH, [str(job_id)]):
                return {"job_id": str(job_id), "status": "held by another worker"}
        leases.keep()
        with leases.working_on(job_id, leases.FINISH), session_scope() as s:
            job = jobs.get_job_for_update(s, job_id)  # two finishing tasks: one registers, under this lock
            if jobs.is_finished(job):
                return {"job_id": str(job_id), "status": job.status}
            target = _target(s, settings, job)
            if job.kind == JobKind.PUSH.value:
                result: JobResult = push.run(
                    s, target, push.PushRequest.of(job.options), lambda: engine.finish_chunked(s, target)
                )
                store.drop(s, job_id)  # the staging rows of a sync rolled back
                count = result.plan.loaded_count  # type: ignore[union-attr]
            else:
                result = engine.finish_chunked(s, target)
                count = result.loaded_count
            finish(s, job, result, task=leases.FINISH, progress=(job.progress_total or count, job.progress_total))
            status = JobStatus.SUCCEEDED.value
    except Exception as exc:
        leases.let_go([(job_id, leases.FINISH)])  # claimed perhaps (its commit failing): never renewed idle
        fail(job_id, exc)
    publish_done(settings, job_id, status)
    return {"job_id": str(job_id), "status": status}


def give_up(job_id: uuid.UUID, exc: BaseException) -> None:
    """A task that ran out of retries (the database stayed away): the job is failed if the
    database takes the write by now; otherwise the stale-job sweep fails it later."""
    try:
        with session_scope() as s:
            if jobs.is_finished(jobs.get_job(s, job_id)):
                return  # a group task's job that finished before the database went away
            jobs.mark_failed(s, job_id, f"Database unavailable, gave up after retrying: {type(exc).__name__}")
            store.drop(s, job_id)
            leases.release_all(s, job_id)
    except Exception as again:
        log.error("job %s: could not record its failure either: %s", job_id, again)
        return
    publish_done(get_settings(), job_id, JobStatus.FAILED.value)


def sweep_stale() -> None:
    """Marks failed the jobs no worker will finish (older than celery.job_stale_seconds) and
    removes the staging rows that finished jobs left behind."""
    with session_scope() as s:
        failed = jobs.fail_stale_jobs(s, get_settings().celery.job_stale_seconds)
        for job_id in failed:
            leases.release_all(s, job_id)
        dropped = store.drop_abandoned(s)
    if failed:
        log.warning("marked %d stale jobs failed: %s", len(failed), ", ".join(map(str, failed)))
    if dropped:
        log.warning("removed %d staging rows of finished jobs", dropped)
