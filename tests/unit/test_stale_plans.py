"""Plans made while the tables were small, used once they are large (Postgres).

The driver (psycopg) prepares a statement that a connection runs again and again, and
Postgres then keeps one plan for it (a "generic" plan), made for the tables as they were
when it was made: nothing plans it again as the registry grows (the staging table is never
analysed; this machine's server runs no autovacuum). A worker that synced a few small
packs on a young registry, then a pack of 10,000 files, spent minutes in one statement
(the revisions' INSERT, its plan reading every staged ref's revisions again for each staged
file: measured 2026-11-30, bench_sync's sequence of a big pack deleted and synced again).

Two defences, each tested here:
- the revision statements are linear under any plan (one probe of (ref, number)'s index
  per row; they joined a GROUP BY of every staged ref);
- a sync of many files (``store.FRESH_PLANS_FROM``) has its statements planned for the
  tables at hand, not the kept plans.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, TextClause, text
from sqlmodel import Session

from attune.sync import history, store
from tests.conftest import workflow_yaml
from tests.unit.test_engine import ACTION, _pack, db_engine, sync_chunked, sync_whole, write_pack

__all__ = ["db_engine"]  # the fixture of test_engine, used here

STAGED = 2000  # rows of the large case: a quadratic plan reads millions, a linear one thousands


@pytest.fixture
def pg(db_engine: Engine) -> Iterator[Session]:
    """A session on one connection (the connection keeps its prepared statements)."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("Postgres's plan cache (SQLite plans each statement for itself)")
    with db_engine.connect() as conn, Session(bind=conn, expire_on_commit=False) as s:
        for table in ("sync_staging", "sync_chunks", "pack_files", "workflow_revisions", "workflow_definitions",
                      "actions", "jobs", "packs"):  # fmt: skip
            s.execute(text(f"DELETE FROM {table}"))
        s.commit()
        yield s
        s.rollback()
        s.execute(text("DEALLOCATE ALL"))
        s.commit()


def _job(s: Session) -> uuid.UUID:
    job_id = uuid.uuid4()
    s.execute(
        text(
            "INSERT INTO jobs (id, kind, trigger, status, pack_ref, options, progress_done, attempts, created_at) "
            "VALUES (:id, 'sync', 'manual', 'running', 'p', '{}', 0, 0, now())"
        ),
        {"id": job_id},
    )
    return job_id


def _stage(s: Session, job_id: uuid.UUID, refs: range) -> None:
    s.execute(
        text(
            "INSERT INTO sync_staging (job_id, ref, chunk, position, status, name, source_file, content_hash, "
            "definition_hash, definition) "
            "SELECT :job, 'p.w' || i, 0, i, 1, 'w' || i, 'workflows/w' || i || '.yaml', 'h', 'new', '{}' "
            "FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) i"
        ),
        {"job": job_id, "a": refs.start, "b": refs.stop - 1},
    )


def _prepare(s: Session, name: str, stmt: TextClause) -> list[str]:
    """PREPAREs ``stmt`` as the driver sends it ($1... for its named parameters); returns
    the parameters' names in order."""
    order: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in order:
            order.append(m.group(1))
        return f"${order.index(m.group(1)) + 1}"

    sql = re.sub(r"%\((\w+)\)s", number, stmt.compile(dialect=s.get_bind().dialect).string)
    s.execute(text(f"PREPARE {name} AS {sql}".replace(":", r"\:")))
    return order


def _work(s: Session, name: str, order: list[str], params: dict[str, Any], *, analyse: bool) -> int:
    """Runs the prepared statement under EXPLAIN; returns the rows all its plan's nodes
    produced, over all their loops (what a plan reads again shows here)."""
    raw = s.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    args = ", ".join(["%s"] * len(order))
    option = "ANALYZE, FORMAT JSON" if analyse else "FORMAT JSON"
    with psycopg.ClientCursor(raw) as cur:  # EXECUTE's arguments as literals
        cur.execute(f"EXPLAIN ({option}) EXECUTE {name}({args})", [params[n] for n in order])
        plan = cur.fetchone()[0][0]["Plan"]  # type: ignore[index]

    def rows(node: dict[str, Any]) -> int:
        own = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
        return own + sum(rows(child) for child in node.get("Plans", []))

    return rows(plan)


def _plan_small_run_large(pg: Session, stmt: TextClause, params: dict[str, Any], grow: Any) -> int:
    """The generic plan of ``stmt`` made on small tables, then run once they are large."""
    pg.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    order = _prepare(pg, "stale", stmt)
    _work(pg, "stale", order, params, analyse=False)  # the plan is made, and kept
    grow()
    return _work(pg, "stale", order, params, analyse=True)


def _revisions(pg: Session, per_ref: int) -> None:
    pg.execute(
        text(
            "INSERT INTO workflow_revisions (ref, number, pack_ref, change, definition_hash, author, created_at) "
            "SELECT 'p.w' || i, n, 'p', 'create', 'old', 'a', now() "
            "FROM generate_series(0, CAST(:last AS integer)) i, generate_series(1, CAST(:per AS integer)) n"
        ),
        {"last": STAGED - 1, "per": per_ref},
    )


def test_recording_revisions_stays_linear_under_a_plan_made_on_small_tables(pg: Session) -> None:
    job_id = _job(pg)
    _stage(pg, job_id, range(3))
    stamp = history.Stamp(job_id, "p", "a", datetime.now(UTC))

    def grow() -> None:
        _revisions(pg, 3)
        _stage(pg, job_id, range(3, STAGED))

    work = _plan_small_run_large(pg, history.RECORD, {**history.stamp_params(stamp), **_binds(history.RECORD)}, grow)
    written = pg.execute(text("SELECT count(*) FROM workflow_revisions WHERE number = 4")).scalar_one()
    assert written == STAGED  # each staged file's definition differs from its latest revision's
    assert work < 30 * STAGED, f"{work} rows produced for {STAGED} staged files: the plan reads them again"


def test_tombstones_stay_linear_under_a_plan_made_on_small_tables(pg: Session) -> None:
    job_id = _job(pg)
    stamp = history.Stamp(job_id, "p", "a", datetime.now(UTC))
    stmt = history.tombstones_statement("postgresql")
    params = {**history.stamp_params(stamp), **_binds(stmt), "refs": [f"p.w{i}" for i in range(STAGED)]}
    work = _plan_small_run_large(pg, stmt, params, lambda: _revisions(pg, 3))
    numbers = pg.execute(text("SELECT DISTINCT number FROM workflow_revisions WHERE change = 'remove'")).all()
    assert numbers == [(4,)]
    assert work < 30 * STAGED, f"{work} rows produced for {STAGED} tombstones: the plan reads them again"


def _binds(stmt: TextClause) -> dict[str, Any]:
    """The values bound in the statement itself (bindparam(..., value))."""
    return {k: b.value for k, b in stmt._bindparams.items() if b.value is not None}


# -- a sync of many files is planned for the tables at hand ---------------------------------
_WRITES = re.compile(r"^\s*(INSERT INTO (workflow_revisions|workflow_definitions|pack_files)|SELECT s\.ref FROM)")


def _generic_plans(s: Session) -> dict[str, int]:
    rows = s.execute(text("SELECT statement, generic_plans FROM pg_prepared_statements")).all()
    return {statement: n for statement, n in rows if _WRITES.match(statement)}


def _write(root: Path, ref: str, count: int, desc: str) -> None:
    write_pack(root, ref, {f"w{i}.yaml": workflow_yaml(f"{ref}.echo", desc=desc) for i in range(count)},
               {"echo.yaml": ACTION})  # fmt: skip


@pytest.mark.parametrize("way", ["whole", "chunked"])
def test_a_sync_of_many_files_plans_its_writes_for_the_tables_at_hand(pg: Session, tmp_path: Path, way: str) -> None:
    small = _pack(pg, "small")
    for n in range(14):  # the driver prepares from the 5th run, Postgres keeps a plan from the 6th after that
        _write(tmp_path, "small", 3, f"run {n}")
        sync_whole(pg, tmp_path, small)
    kept = _generic_plans(pg)
    assert kept and any(kept.values()), f"no kept plan to test against: {kept}"
    big = _pack(pg, "big")
    _write(tmp_path, "big", store.FRESH_PLANS_FROM, "large")
    result = sync_whole(pg, tmp_path, big) if way == "whole" else sync_chunked(pg, tmp_path, big, size=100)
    assert result.registered_count == store.FRESH_PLANS_FROM
    after = _generic_plans(pg)
    assert {k: after[k] - n for k, n in kept.items() if after[k] != n} == {}
    # and a small pack's sync keeps using the kept plans (planning afresh slows a tree of them)
    _write(tmp_path, "small", 3, "once more")
    sync_whole(pg, tmp_path, small)
    assert sum(_generic_plans(pg).values()) > sum(after.values())
