"""Enqueueing jobs (the producer side); workers consume them by task name."""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache
from typing import Any

from celery import Celery

from attune.broker.names import TaskName
from attune.config import get_settings
from attune.errors import DependencyUnavailable
from attune.jobs.models import JobKind
from attune.observability.logs import TASK_HEADER, request_id_var

log = logging.getLogger(__name__)
TASK_OF_KIND = {
    JobKind.SYNC: TaskName.SYNC,
    JobKind.VALIDATE: TaskName.VALIDATE,
    JobKind.PLAN: TaskName.PLAN,
    JobKind.PUSH: TaskName.PUSH,
}


@lru_cache(maxsize=1)
def producer() -> Celery:
    from attune.broker.app import make_celery

    return make_celery(get_settings())


def reset_producer() -> None:
    producer.cache_clear()


def enqueue(kind: JobKind, job_id: uuid.UUID) -> None:
    """Sends the job's task; DependencyUnavailable when the broker cannot take it."""
    send(TASK_OF_KIND[kind], [str(job_id)], task_id=str(job_id))


def enqueue_group(job_ids: list[uuid.UUID]) -> None:
    """Sends one task for several sync jobs (a bulk sync's packs); DependencyUnavailable
    when the broker cannot take it."""
    send(TaskName.SYNC_GROUP, [[str(j) for j in job_ids]])


def send(task_name: TaskName, args: list[Any], *, task_id: str | None = None) -> None:
    app = producer()
    request_id = request_id_var.get()
    try:
        app.send_task(
            task_name.value,
            args=args,
            task_id=task_id,
            # the request that started the work, for the worker's logs (and its own sends)
            headers={TASK_HEADER: request_id} if request_id else None,
            queue=app.conf.task_default_queue,
            # The job row holds the outcome: nothing to fetch from the result backend,
            # so sending never waits on it (it would retry for long when Redis is down).
            ignore_result=True,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5},
        )
    except Exception as exc:  # kombu/redis connection errors of every kind
        # the driver's words (host, port) go to the log, not to the caller
        log.warning("broker unavailable: %s: %s", type(exc).__name__, exc)
        raise DependencyUnavailable(f"Broker unavailable ({type(exc).__name__}): try again later") from exc
