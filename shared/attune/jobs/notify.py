"""Tells a waiting API request that a job finished: a Redis pub/sub message per job.

The job row stays the source of truth; the message only saves the waiter from
polling. Without a Redis URL, waiters poll the job row instead.
"""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

from attune.config import Settings

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "attune:job-done:"


def channel(job_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{job_id}"


def redis_url(settings: Settings) -> str | None:
    for url in (settings.celery.result_backend, settings.celery.broker_url):
        if url.startswith(("redis://", "rediss://", "unix://")):
            return url
    return None


@lru_cache(maxsize=4)
def _client(url: str):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def publish_done(settings: Settings, job_id: uuid.UUID, status: str) -> None:
    url = redis_url(settings)
    if url is None:
        return
    try:
        _client(url).publish(channel(job_id), status)
    except Exception as exc:  # the waiter falls back to reading the row
        log.warning("could not publish completion of job %s: %s", job_id, exc)
