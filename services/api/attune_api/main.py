"""The FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from redis.asyncio import Redis

from attune import __version__
from attune.broker.notify import redis_url
from attune.config import DEV_SECRET_NOTICE, get_settings
from attune.db.engine import session_scope
from attune.jobs import leases, pipeline
from attune.observability import logs
from attune.revisions import service as revisions_service
from attune_api import access, admission, docs, errors, limits, observe
from attune_api.routers import auth, health, jobs, keys, packs, revisions, sync, users, versions, workflows
from attune_api.schemas import ErrorBody

log = logging.getLogger("attune.api")
DESCRIPTION = """
Loads workflow definitions from pack directories, validates them and keeps the
database in step with the files. Log in with `POST /auth/login`, then send
`Authorization: Bearer <access_token>` on every `/api/v1` request
(the **Authorize** button here does that for you), or an API key (`atk_...`,
`POST /api/v1/keys`). Each operation says the role it needs: viewer (reads),
editor (create, update, sync, validate, plan packs), admin (also delete packs,
manage users and every key).
"""


async def every(interval: float, work: Callable[[], object], what: str) -> None:
    """Runs ``work`` in a thread every ``interval`` seconds, for the app's lifetime."""
    while True:
        try:
            await run_in_threadpool(work)
        except Exception as exc:  # the database may be down: try again next time
            log.warning("%s failed: %s", what, exc)
        await asyncio.sleep(interval)


def sweep_revisions() -> None:
    with session_scope() as session:
        removed = revisions_service.sweep_expired(session, retention_days=get_settings().revisions.retention_days)
    if removed:
        log.info("removed %d revisions of packs deleted long ago", removed)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    admission.bound_threadpool(settings)
    url = redis_url(settings)
    app.state.redis = Redis.from_url(url, socket_connect_timeout=2) if url else None
    sweepers = [
        asyncio.create_task(every(settings.celery.sweep_interval_seconds, pipeline.sweep_stale, "stale job sweep")),
        # the tasks of a worker host that died: sent again (jobs/leases.py)
        asyncio.create_task(every(settings.celery.lease_sweep_seconds, leases.sweep, "lease sweep")),
        # the history of packs deleted more than revisions.retention_days ago
        asyncio.create_task(every(settings.revisions.sweep_interval_seconds, sweep_revisions, "revision sweep")),
    ]
    try:
        yield
    finally:
        for sweeper in sweepers:
            sweeper.cancel()
        if app.state.redis is not None:
            with suppress(Exception):  # closing a pool whose connections already dropped
                await app.state.redis.aclose()


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure(settings, "api")
    if settings.using_dev_secret:
        logging.getLogger("attune.api").warning("Using a %s", DEV_SECRET_NOTICE)
    app = FastAPI(
        title="Attune pack workflows",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # an undecodable body (not UTF-8, not JSON) is a 400 from any route
        responses={400: {"model": ErrorBody, "description": "Malformed request"}},
    )
    # innermost: past the size check, a request waits its turn for the database (or gets 503)
    admission.install(app, settings)
    app.add_middleware(limits.BodyLimit, settings=settings.api, uploads=settings.versions)
    # outermost: every answer, 413s and errors included, gets an id and is counted
    app.add_middleware(observe.RequestContext, access_level=logging.INFO if settings.json_logs else logging.DEBUG)
    errors.install(app)
    docs.install(app)  # /docs and /redoc from local assets, not a CDN
    for router in (packs, sync, versions, workflows, revisions, jobs, users, keys):
        access.annotate(router.router)  # each route's role, in its OpenAPI operation
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(packs.router)
    app.include_router(sync.router)
    app.include_router(versions.router)
    app.include_router(workflows.router)
    app.include_router(revisions.router)
    app.include_router(jobs.router)
    app.include_router(users.router)
    app.include_router(keys.router)
    if settings.metrics.enabled:
        app.include_router(observe.router)
    return app


app = create_app()
