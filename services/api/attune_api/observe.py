"""Request ids, request metrics and GET /metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attune.config import get_settings
from attune.db.engine import get_engine, read_only
from attune.jobs.models import Job
from attune.observability.logs import HEADER, new_request_id, request_id_var
from attune.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS, StateCollector
from attune_api.errors import internal_error_body

log = logging.getLogger("attune.api.access")


class RequestContext:
    """Pure ASGI middleware: sets the request id (X-Request-ID in and out), times the
    request and counts it by route template (never by raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, access_level: int = logging.INFO) -> None:
        self.app = app
        self.access_level = access_level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.encode()), None)
        request_id = new_request_id(offered)
        token = request_id_var.set(request_id)
        status = 500
        started = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Nothing handled it: the traceback goes to the log with the request id, the
            # caller gets "internal error" and that id, never the exception's text.
            logging.getLogger("attune.api").error("unhandled error", exc_info=exc)
            if started:
                raise  # half an answer is out: the server drops the connection
            response = JSONResponse(internal_error_body(), status_code=500)
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            log.log(
                self.access_level, "%s %s %s %.1f ms", method, scope["path"], status, elapsed * 1000,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2)},
            )  # fmt: skip
            request_id_var.reset(token)


def _jobs_by_state() -> list[tuple[str, str, int]]:
    with Session(read_only(get_engine())) as s:
        rows = s.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))  # type: ignore[call-overload]
        return [(k, st, n) for k, st, n in rows]


def _queue_depth() -> tuple[str, int]:
    settings = get_settings()
    queue = settings.celery.task_queue
    if settings.embedded_broker:
        return queue, sum(1 for _ in (settings.broker_folder / "queue").glob(f"*.{queue}.msg"))
    import redis

    client = redis.Redis.from_url(settings.celery.broker_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return queue, int(client.llen(queue))  # type: ignore[arg-type]
    finally:
        client.close()


router = APIRouter(tags=["health"])
_state = CollectorRegistry()
_state.register(StateCollector(_jobs_by_state, _queue_depth))


def _exposition() -> bytes:
    return generate_latest(REGISTRY) + generate_latest(_state)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics() -> Any:
    """Prometheus metrics: requests by route and status, latencies, jobs by kind and status,
    queue depth. Unauthenticated, like /health: expose it to your scraper only."""
    return Response(await run_in_threadpool(_exposition), media_type=CONTENT_TYPE_LATEST)
