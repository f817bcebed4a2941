"""Thin tasks: take ids, open a session scope, call one service, return a plain dict.

The job row holds status and result: the sync tasks store nothing in Celery's result backend."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from celery import Task

from attune.db.engine import session_scope
from attune.sync.runner import DatabaseUnavailable, give_up, run_chunk, run_finish, run_job
from attune.users import repository as users
from attune_worker.celery_app import app


class JobTask(Task):
    """A job's task: retried with backoff while the database is away (about 3 minutes in
    all), then the job is failed rather than left running."""

    autoretry_for = (DatabaseUnavailable,)
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = True
    max_retries = 10
    ignore_result = True
    track_started = False

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if isinstance(exc, DatabaseUnavailable) and args:
            give_up(uuid.UUID(args[0]), exc)


@app.task(name="system.ping")
def ping() -> dict[str, object]:
    """Round-trip check: proves the worker is consuming and can read the database."""
    with session_scope() as session:
        user_count = users.count(session)
    return {"pong": True, "worker": f"{socket.gethostname()}:{os.getpid()}", "users": user_count}


@app.task(name="packs.sync_workflows", base=JobTask)
def sync_workflows(job_id: str) -> dict[str, object]:
    """Load, validate and register a pack's workflows (job row holds options and result)."""
    return run_job(uuid.UUID(job_id))


@app.task(name="packs.validate_workflows", base=JobTask)
def validate_workflows(job_id: str) -> dict[str, object]:
    """Load and validate a pack's workflows; registers nothing."""
    return run_job(uuid.UUID(job_id))


@app.task(name="packs.sync_chunk", base=JobTask)
def sync_chunk(job_id: str, index: int, first_position: int, names: list[str]) -> dict[str, object]:
    """Check one slice of a large pack's files and stage the outcome."""
    return run_chunk(uuid.UUID(job_id), index, first_position, names)


@app.task(name="packs.sync_finish", base=JobTask)
def sync_finish(job_id: str) -> dict[str, object]:
    """Register every staged chunk of a large pack's sync in one transaction."""
    return run_finish(uuid.UUID(job_id))
