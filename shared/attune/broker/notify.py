"""Tells a waiting API request that a job finished: a Redis pub/sub message per job.

The job row stays the source of truth; the message only saves the waiter from
polling. The waiter subscribes to the job's channel, checks the row once after
subscribing (it may already be done), then waits for the message; the row is also
re-read every few seconds in case a message was lost. Without Redis it polls the
row with a growing interval.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any

from redis.exceptions import RedisError

from attune.config import Settings

log = logging.getLogger(__name__)
RECHECK_S = 2.0
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


def publish_done_many(settings: Settings, finished: Sequence[tuple[uuid.UUID, str]]) -> None:
    """``publish_done`` for several jobs, in one round trip."""
    url = redis_url(settings)
    if url is None or not finished:
        return
    try:
        pipe = _client(url).pipeline(transaction=False)
        for job_id, status in finished:
            pipe.publish(channel(job_id), status)
        pipe.execute()
    except Exception as exc:  # the waiters fall back to reading the rows
        log.warning("could not publish completion of %d jobs: %s", len(finished), exc)


async def wait_for_message(redis: Any, job_id: object, timeout: float, is_done: Callable[[], Awaitable[bool]]) -> bool:
    """Waits until ``is_done`` says so or ``timeout`` passes; ``redis`` is an asyncio client or None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if redis is not None:
        try:
            async with asyncio.timeout(timeout + RECHECK_S), redis.pubsub() as ps:
                await ps.subscribe(channel(str(job_id)))
                if await is_done():
                    return True
                next_check = loop.time() + RECHECK_S
                while (remaining := deadline - loop.time()) > 0:
                    msg = await ps.get_message(ignore_subscribe_messages=True, timeout=min(remaining, RECHECK_S))
                    if msg is not None or loop.time() >= next_check:
                        if await is_done():
                            return True
                        next_check = loop.time() + RECHECK_S
                return await is_done()
        except (RedisError, OSError) as exc:
            log.warning("waiting on Redis failed (%s); polling the job instead", exc)
        except TimeoutError:
            return await is_done()
    interval = 0.02
    while loop.time() < deadline:
        if await is_done():
            return True
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
        interval = min(interval * 2, 1.0)
    return await is_done()
