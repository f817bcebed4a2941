"""Waits for a job without blocking the event loop.

Subscribes to the job's Redis channel (published by the worker after its
commit), checks the job row once after subscribing (it may already be done),
then waits for the message; the row is also re-read every few seconds in case
a message was lost. Without Redis it polls the row with a growing interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from attune.jobs.notify import channel

log = logging.getLogger("attune.api")
RECHECK_S = 2.0


async def wait_for_job(
    redis: Redis | None, job_id: object, timeout: float, is_done: Callable[[], Awaitable[bool]]
) -> bool:
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
