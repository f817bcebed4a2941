"""Statements sent to Postgres together, in the caller's transaction: one round trip where
each statement made its own (issue 15: a small pack's sync spent more of a worker's time
waiting on and talking to the server than checking its files).

The statements are SQLAlchemy ``text()`` constants, compiled once for the dialect; their
rows come back as tuples. Postgres runs them in order, as if sent one by one; the first
that fails fails the transaction (the caller's scope rolls it back) and raises here.
Elsewhere (SQLite) they are executed one by one through the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.engine import Compiled
from sqlmodel import Session

# id(statement) -> (the statement, kept alive so that its id is not reused; its compiled form)
_COMPILED: dict[int, tuple[TextClause, Compiled]] = {}


def _compiled(session: Session, stmt: TextClause) -> Compiled:
    found = _COMPILED.get(id(stmt))
    if found is None:
        found = _COMPILED[id(stmt)] = (stmt, stmt.compile(dialect=session.get_bind().dialect))
    return found[1]


class Pipeline:
    """``add`` statements, then ``run``: the rows of each, in the order added."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._calls: list[tuple[TextClause, Mapping[str, Any]]] = []
        self._last: list[tuple[TextClause, Mapping[str, Any]]] = []

    def add(self, stmt: TextClause, params: Mapping[str, Any]) -> int:
        """Queues ``stmt``; returns the index of its rows in ``run``'s answer."""
        self._calls.append((stmt, params))
        return len(self._calls) - 1

    def add_last(self, stmt: TextClause, params: Mapping[str, Any]) -> None:
        """Queues ``stmt`` after every statement ``add`` queues, before or after this call
        (its rows are not answered)."""
        self._last.append((stmt, params))

    def run(self) -> list[list[tuple[Any, ...]]]:
        return self._run(b"")

    def run_and_commit(self) -> list[list[tuple[Any, ...]]]:
        """``run``, and on Postgres the transaction's COMMIT in the same round trip (the
        caller's scope then finds nothing left to commit: the driver sends nothing for an
        idle connection). Elsewhere the caller's scope commits, as after ``run``."""
        return self._run(b"COMMIT")

    def _run(self, then: bytes) -> list[list[tuple[Any, ...]]]:
        session, calls, last = self._session, self._calls, self._last
        if not calls and not last:
            return []
        self._calls, self._last = [], []
        answered = len(calls)
        calls = calls + last
        if session.get_bind().dialect.name != "postgresql":
            out: list[list[tuple[Any, ...]]] = []
            for stmt, params in calls:
                result: Any = session.execute(stmt, params)  # a CursorResult: a DELETE returns no rows
                out.append([tuple(r) for r in result] if result.returns_rows else [])
            return out[:answered]
        if session.new or session.dirty or session.deleted:
            session.flush()  # as session.execute's autoflush would: the ORM's writes come first
        raw: Any = session.connection().connection.driver_connection
        cursors = []
        with raw.pipeline():
            for stmt, params in calls:
                compiled = _compiled(session, stmt)
                values: dict[str, Any] = dict(compiled.construct_params(dict(params)) or {})
                processors: Mapping[str, Any] = compiled._bind_processors  # type: ignore[attr-defined]
                for name, process in processors.items():  # the bound types' own conversions
                    if values.get(name) is not None:
                        values[name] = process(values[name])
                cur = raw.cursor()
                cur.execute(compiled.string, values)
                cursors.append(cur)
            if then:
                raw.execute(then)
        out = []
        for cur in cursors:
            out.append(cur.fetchall() if cur.description is not None else [])
            cur.close()
        return out[:answered]


def execute(session: Session, stmt: TextClause, params: Mapping[str, Any], into: Pipeline | None) -> None:
    """Runs a write now, or queues it ``into`` a caller's pipeline (sent with its other writes)."""
    if into is None:
        session.execute(stmt, params)
    else:
        into.add(stmt, params)
