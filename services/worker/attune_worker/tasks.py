"""Thin tasks: each is one call into the job pipeline (attune.jobs.pipeline).

The job row holds status and result: the sync tasks store nothing in Celery's result backend."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from celery import Task

from attune.broker.names import TaskName
from attune.db.engine import session_scope
from attune.jobs import bulk, pipeline
from attune.sync.engine import Slice
from attune.users import repository as users
from attune_worker.celery_app import app


class JobTask(Task):
    """A job's task: retried with backoff while the database is away (about 3 minutes in
    all), then the job is failed rather than left running."""

    autoretry_for = (pipeline.DatabaseUnavailable,)
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = 10
    ignore_result = True
    track_started = False

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if isinstance(exc, pipeline.DatabaseUnavailable) and args:
            for job_id in args[0] if isinstance(args[0], list) else [args[0]]:  # a group task: every job
                pipeline.give_up(uuid.UUID(job_id), exc)


@app.task(name=TaskName.PING.value)
def ping() -> dict[str, object]:
    """Round-trip check: proves the worker is consuming and can read the database."""
    with session_scope() as session:
        user_count = users.count(session)
    return {"pong": True, "worker": f"{socket.gethostname()}:{os.getpid()}", "users": user_count}


@app.task(name=TaskName.SYNC.value, base=JobTask)
def sync_workflows(job_id: str) -> dict[str, object]:
    """Load, validate and register a pack's workflows (job row holds options and result)."""
    return pipeline.run(uuid.UUID(job_id))


@app.task(name=TaskName.SYNC_GROUP.value, base=JobTask)
def sync_group(job_ids: list[str]) -> dict[str, object]:
    """A bulk sync's group of packs: each pack's sync job in turn (its own transaction)."""
    return bulk.run_group([uuid.UUID(j) for j in job_ids])


@app.task(name=TaskName.VALIDATE.value, base=JobTask)
def validate_workflows(job_id: str) -> dict[str, object]:
    """Load and validate a pack's workflows; registers nothing."""
    return pipeline.run(uuid.UUID(job_id))


@app.task(name=TaskName.PLAN.value, base=JobTask)
def plan_workflows(job_id: str) -> dict[str, object]:
    """A sync's dry run: what it would create, update, remove; writes nothing."""
    return pipeline.run(uuid.UUID(job_id))


@app.task(name=TaskName.PUSH.value, base=JobTask)
def push_version(job_id: str) -> dict[str, object]:
    """A pushed version: its plan, then (unless refused) the pack's sync from it."""
    return pipeline.run(uuid.UUID(job_id))


@app.task(name=TaskName.SYNC_CHUNK.value, base=JobTask)
def sync_chunk(job_id: str, index: int, first_position: int, names: list[str]) -> dict[str, object]:
    """Check one slice of a large pack's files and stage the outcome."""
    return pipeline.run_chunk(uuid.UUID(job_id), Slice(index, first_position, names))


@app.task(name=TaskName.SYNC_FINISH.value, base=JobTask)
def sync_finish(job_id: str) -> dict[str, object]:
    """Register every staged chunk of a large pack's sync in one transaction."""
    return pipeline.run_finish(uuid.UUID(job_id))
