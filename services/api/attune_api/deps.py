"""Named dependencies, defined once, and the way routers reach the database.

A connection is held only by a thread that is running: a request's database work runs in
one threadpool call (``read`` / ``write``) whose session ends, and gives its connection
back, before the thread returns. Nothing then holds a connection while it waits for a
thread (to serialise the response, to tear a dependency down), which is what made a
burst larger than the pool deadlock (see ``admission``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Concatenate, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from attune.config import Settings, get_settings
from attune.db.engine import get_engine, read_only
from attune.refs import PACK_REF_DESCRIPTION, PACK_REF_MAX, PACK_REF_PATTERN, WORKFLOW_REF_MAX, WORKFLOW_REF_PATTERN

P = ParamSpec("P")
T = TypeVar("T")


def _in_session(read: bool, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
    engine = read_only(get_engine()) if read else get_engine()
    # Closing rolls back what was not committed and gives the connection back to the pool;
    # unlike a rollback it leaves the objects loaded (detached) for the caller.
    with Session(engine, expire_on_commit=False) as session:
        return fn(session, *args, **kwargs)


async def read(fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(session, ...)`` in the threadpool with a read-only session that ends before the
    thread returns. ``fn`` builds the response (objects are not loaded after it)."""
    return await run_in_threadpool(partial(_in_session, True, fn, *args, **kwargs))


async def write(fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Like ``read``, for work that writes: ``fn`` commits; anything it did not is rolled back."""
    return await run_in_threadpool(partial(_in_session, False, fn, *args, **kwargs))


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session kept for the whole request, for routers that use one across several steps.
    Making it costs no I/O (the connection is taken on first use). Such routers commit
    before they answer; anything left open is rolled back here, in a thread."""
    engine = read_only(get_engine()) if request.method in ("GET", "HEAD") else get_engine()
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            # Its own limiter (as FastAPI's teardown does): a connection given back never
            # waits behind threads that may be waiting for one.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            session.close()


async def _settings() -> Settings:
    return get_settings()  # async: no threadpool hop for a cached object


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]

PackRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=PACK_REF_MAX,
        pattern=PACK_REF_PATTERN,
        description=PACK_REF_DESCRIPTION,
        examples=["my_pack"],
    ),
]

WorkflowRef = Annotated[
    str,
    Path(
        max_length=WORKFLOW_REF_MAX,
        pattern=WORKFLOW_REF_PATTERN,
        description="Workflow ref: <pack_ref>.<name>",
        examples=["my_pack.deploy_app"],
    ),
]
