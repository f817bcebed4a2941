"""One engine per process, sessions with commit/rollback at the edges."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import orjson
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from attune.config import get_settings


def _dumps(obj: object) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # what orjson refuses (integers beyond 64 bits in user metadata): plain json
        return json.dumps(obj)


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    kwargs: dict = {
        "echo": echo,
        "pool_pre_ping": True,
        # JSON columns written with orjson (job results of thousands of entries); read with
        # json, which keeps integers beyond 64 bits exact where orjson makes them floats
        "json_serializer": _dumps,
    }
    if url.startswith("postgresql"):
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, connect_args={"connect_timeout": 5})
    return create_engine(url, **kwargs)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    s = get_settings().database
    return make_engine(s.url, pool_size=s.pool_size, echo=s.echo)


def reset_engine() -> None:
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
