"""One engine per process, sessions with commit/rollback at the edges."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlmodel import Session

from attune.config import get_settings


def dumps_json(obj: object) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # what orjson refuses (integers beyond 64 bits in user metadata): plain json
        return json.dumps(obj)


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, pool_timeout: float = 30.0, echo: bool = False
) -> Engine:
    """Postgres and SQLite alike: ``pool_size`` connections kept, ``max_overflow`` more in a
    burst, ``pool_timeout`` seconds to wait for one (then ``sqlalchemy.exc.TimeoutError``,
    which the API answers with 503)."""
    kwargs: dict = {
        "echo": echo,
        "pool_pre_ping": True,
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
        # JSON columns written with orjson (job results of thousands of entries); read with
        # json, which keeps integers beyond 64 bits exact where orjson makes them floats
        "json_serializer": dumps_json,
    }
    if url.startswith("postgresql"):
        kwargs.update(connect_args={"connect_timeout": 5})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _fast_compression)
        return engine
    if url.startswith("sqlite"):
        return _sqlite_engine(url, kwargs)
    return create_engine(url, **kwargs)


_LZ4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def _fast_compression(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Large values this connection writes (definitions of 5 KB and more: TOASTed) are
    compressed with lz4 where the server has it: pglz took 1.2 s of the server's time to
    store 10,000 definitions, lz4 0.6 s (measured). Set once per connection: a SET LOCAL
    before each sync's COPY was a round trip per pack. Reading either is transparent."""
    with dbapi_connection.cursor() as cur:
        cur.execute(_LZ4)
        found = cur.fetchone()
        if found and found[0]:
            cur.execute("SET default_toast_compression = 'lz4'")
    dbapi_connection.commit()  # the driver's implicit transaction: the setting outlives it


def _sqlite_engine(url: str, kwargs: dict) -> Engine:
    """The embedded database: one file shared by the API and worker processes.

    WAL lets readers go on while one writer writes; every transaction starts with
    BEGIN IMMEDIATE, so that two writers queue on the busy timeout instead of one
    failing when it turns a read into a write."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # A thread waiting on the file lock holds a connection; the API admits no more requests
    # at once than the pool holds (api.max_concurrency), so none waits for a connection too.
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
        cur = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=60000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # read-only sessions (GET requests, job polling) read a snapshot and wait for no one
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


READ_ONLY = "attune_read_only"


def read_only(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that only read: on SQLite they do not
    take the write lock; elsewhere nothing changes."""
    return engine.execution_options(**{READ_ONLY: True})


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    s = get_settings().database
    return make_engine(
        s.url, pool_size=s.pool_size, max_overflow=s.max_overflow, pool_timeout=s.pool_timeout_seconds, echo=s.echo
    )


def reset_engine() -> None:
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


def _leave_to_parent() -> None:
    """In a forked process (a Celery pool process, also the one that replaces a pool process
    that died, forked from a main process whose lease sweep had connected): a pool of its
    own, the inherited connections left unused (not closed: they are the parent's sessions).
    Both processes otherwise sent statements over one socket, each inside the other's
    transactions ("can't change 'autocommit' now", "the connection is lost"), as SQLAlchemy's
    documentation warns for os.fork."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)


os.register_at_fork(after_in_child=_leave_to_parent)


@contextmanager
def session_scope(bind: Connection | None = None) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error. ``bind``: on this connection
    (one checked out for a series of units of work: no checkout and ping each time)."""
    with Session(bind if bind is not None else get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
