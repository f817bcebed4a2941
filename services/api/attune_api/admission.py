"""Admission control: a burst larger than the database pool waits its turn, and past a
bound is refused with 503 and ``Retry-After``, never answered 500.

Every database call of the API runs in the threadpool, one session per thread hop that
ends (and gives its connection back) before the thread returns (see ``deps``). Here:

- the threadpool gets as many threads as the database pool has connections, so that a
  thread never waits for a connection (``bound_threadpool``, at startup);
- the ``Admission`` middleware lets at most ``api.max_concurrency`` requests work at once
  (default: the pool's capacity); the others wait in a FIFO queue on the event loop,
  which costs a coroutine each, not a thread nor a connection. A request finding
  ``api.max_queue`` others waiting, or still waiting after ``api.queue_timeout_seconds``,
  is refused at once with 503 and ``Retry-After``;
- a sync or validate request that waits for its worker takes its turn in the queue like
  any other (refused only past ``api.max_queue``, never for the time it waited), then
  holds no place while the worker runs: a burst of syncs queues as jobs, and never keeps
  reads out;
- logins (an argon2 check each, about 0.5 s of CPU) wait in a line of their own with
  ``api.max_concurrent_logins`` places (default: the number of CPUs): a burst of logins
  never takes the places of other requests;
- a pool timeout (a connection not found in ``database.pool_timeout_seconds``) is a 503
  with ``Retry-After``, not a 500.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from collections import deque
from contextlib import suppress

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attune.config import Settings

log = logging.getLogger("attune.api")

WAITING = Gauge("attune_api_admission_waiting", "Requests waiting for admission (database work)")
SHED = Counter("attune_api_admission_shed_total", "Requests refused with 503 by admission control", ["reason"])

# Answer without queueing: probes, metrics and the documentation.
EXEMPT = frozenset({"/health", "/ready", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# Requests that wait for a worker after their database work: a turn in the queue, no place held.
# (a pushed archive too: its body streams to disk for as long as it takes, holding no place)
WAITS_FOR_WORKER = re.compile(r"^/api/v1/packs/[^/]+/(workflows/(sync|validate)|versions|versions/\d+/activate)/?$")
# Requests that check a password: their own line.
PASSWORD_CHECKS = frozenset({"/auth/login"})


def slots(settings: Settings) -> int:
    """Requests (and threadpool threads) doing database work at once."""
    return settings.api.max_concurrency or settings.database.pool_capacity


def login_slots(settings: Settings) -> int:
    return min(settings.api.max_concurrent_logins or os.cpu_count() or 1, slots(settings))


class Busy(Exception):
    def __init__(self, retry_after: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason
        self.message = message


class Gate:
    """A FIFO semaphore with a bounded queue and a bounded wait (one per process)."""

    def __init__(self, slots: int, max_queue: int, timeout: float) -> None:
        self.slots = slots
        self.free = slots
        self.max_queue = max_queue
        self.timeout = timeout
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.hold_s = 0.05  # running mean of the time a place is held, for Retry-After

    def retry_after(self) -> int:
        """Seconds until the queue ahead has drained, at the pace seen so far (at least 1)."""
        return max(1, math.ceil((len(self.waiters) + 1) * self.hold_s / self.slots))

    async def acquire(self, *, patient: bool = False) -> None:
        """Takes a place, waiting in line for one. Raises ``Busy`` when ``max_queue`` others
        are waiting, or (unless ``patient``) when the wait reaches the timeout."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        if len(self.waiters) >= self.max_queue:
            message = f"Server busy: {self.slots} requests at work and {len(self.waiters)} waiting"
            raise Busy(self.retry_after(), "queue_full", message)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        WAITING.inc()
        try:
            async with asyncio.timeout(None if patient else self.timeout):
                await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                self.release()  # the place was handed over just as the wait ended: pass it on
            else:
                fut.cancel()
                with suppress(ValueError):
                    self.waiters.remove(fut)
            if isinstance(exc, TimeoutError):
                raise Busy(
                    self.retry_after(), "queue_timeout", f"Server busy: no capacity within {self.timeout:g} s"
                ) from None
            raise
        finally:
            WAITING.dec()

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the place goes straight to the first in line
                return
        self.free += 1

    def held(self, seconds: float) -> None:
        self.hold_s += (seconds - self.hold_s) * 0.1


class Admission:
    """Pure ASGI middleware in front of the routes (see the module's docstring)."""

    def __init__(self, app: ASGIApp, gate: Gate, login_gate: Gate) -> None:
        self.app = app
        self.gate = gate
        self.login_gate = login_gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        gate = self.login_gate if scope["path"] in PASSWORD_CHECKS else self.gate
        waits_for_worker = scope["method"] == "POST" and WAITS_FOR_WORKER.match(scope["path"]) is not None
        try:
            # a sync or validate is never refused for its wait: it queues as a job
            await gate.acquire(patient=waits_for_worker)
        except Busy as busy:
            SHED.labels(busy.reason).inc()
            response = JSONResponse(
                {"error": f"{busy.message}; retry after {busy.retry_after} s"},
                status_code=503,
                headers={"Retry-After": str(busy.retry_after)},
            )
            await response(scope, receive, send)
            return
        if waits_for_worker:
            gate.release()  # its turn came; its thread hops are bounded by the threadpool
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                gate.held(time.perf_counter() - start)
                gate.release()

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()  # the work is done: a slow reader of the body holds no place
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            release()


def bound_threadpool(settings: Settings) -> None:
    """As many threadpool threads as the database pool has connections (call on the event
    loop at startup): every database call of the API runs in the threadpool, and none then
    waits for a connection while another waits for a thread."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = slots(settings)


def install(app: FastAPI, settings: Settings) -> None:
    """The middleware (add it before the outer ones) and the pool timeout's 503."""
    api = settings.api
    gate = Gate(slots(settings), api.max_queue, api.queue_timeout_seconds)
    login_gate = Gate(login_slots(settings), api.max_queue, api.queue_timeout_seconds)
    app.state.admission = gate
    app.add_middleware(Admission, gate=gate, login_gate=login_gate)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(_: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no database connection free: %s", str(exc).splitlines()[0])
        SHED.labels("pool_timeout").inc()
        retry = gate.retry_after()
        return JSONResponse(
            {"error": f"Server busy: no database connection free; retry after {retry} s"},
            status_code=503,
            headers={"Retry-After": str(retry)},
        )
