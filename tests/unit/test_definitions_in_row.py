"""A workflow's definition stays in its row (Postgres, migration 0013).

A definition of a dozen tasks (5-8 KB of JSON) compresses to 2-4 KB. With Postgres's default
target (rows shrunk to about 2 KB), such a definition went out of line to the table's TOAST
table in each table a sync writes it to (staged, recorded as a revision, registered), and
each copy from one to the next fetched it from one TOAST table and stored it in the next
(the revisions' INSERT of a cold pack of 20 files: 1.57 ms, 0.59 in the row; README). Here: a sync of
such definitions leaves the TOAST tables of the three tables empty, and what it stored
reads back whole.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from tests.unit.test_engine import ACTION, _pack, _target, db_engine, session, sync_whole, write_pack

__all__ = ["db_engine", "session"]  # the fixtures of test_engine, used here

TABLES = ("sync_staging", "workflow_revisions", "workflow_definitions")


@pytest.fixture
def pg(session: Session) -> Session:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("TOAST is Postgres's (SQLite keeps a row's values in the row)")
    return session


def _big_workflow(seed: int, tasks: int = 14) -> str:
    """A valid workflow whose definition is 5-8 KB of JSON and compresses to 2-4 KB: task
    names and inputs of random words (random enough not to compress to nothing)."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 12))) for _ in range(40)]
    lines = ['version: "1.0"', f"description: {' '.join(rng.sample(words, 12))}", "tasks:"]
    for t in range(tasks):
        lines += [f"  - name: task_{t}_{rng.choice(words)}", "    action: p.act", "    input:"]
        lines += [f"      {rng.choice(words)}_{k}: {' '.join(rng.sample(words, 6))}" for k in range(5)]
    return "\n".join(lines) + "\n"


def _toasted(s: Session, table: str) -> int:
    """Live rows in ``table``'s TOAST table."""
    toast = s.execute(text("SELECT CAST(reltoastrelid AS regclass) FROM pg_class WHERE relname = :t"), {"t": table})
    return s.execute(text(f"SELECT count(*) FROM {toast.scalar_one()}")).scalar_one()


def test_a_synced_definition_of_a_dozen_tasks_stays_in_its_row(pg: Session, tmp_path: Path) -> None:
    from attune.sync import engine
    from attune.sync.engine import Slice
    from attune.workflows.loader import list_workflow_files

    files = {f"w{i}.yaml": _big_workflow(i) for i in range(6)}
    write_pack(tmp_path, "p", files, {"act.yaml": ACTION})
    pack = _pack(pg, "p")
    _, folders = engine.inspect_folders(tmp_path / "p")
    target = _target(pg, tmp_path, pack, folders=folders)
    names = list_workflow_files(target.root) or []
    engine.stage_chunk(pg, target, part=Slice(0, 0, names))  # staged, not yet registered
    pg.commit()
    sizes = pg.execute(text("SELECT pg_column_size(definition), length(CAST(definition AS TEXT)) FROM sync_staging"))
    sizes = sizes.all()
    assert len(sizes) == 6
    # the case this is about: definitions of 5 KB and more, compressed to more than the
    # default target (~2 KB) and less than the one set (4080 bytes)
    assert all(stored > 2100 and stored < 3900 and length > 5000 for stored, length in sizes), sizes
    assert _toasted(pg, "sync_staging") == 0
    result = engine.finish_chunked(pg, target)
    pg.commit()
    assert result.loaded_count == 6 and not result.errors
    for table in TABLES:
        assert _toasted(pg, table) == 0, f"{table}: definitions went to its TOAST table"
    # what was stored reads back whole, in both tables
    stored = pg.execute(text("SELECT ref, CAST(definition AS TEXT) FROM workflow_definitions ORDER BY ref")).all()
    revised = pg.execute(text("SELECT ref, CAST(definition AS TEXT) FROM workflow_revisions ORDER BY ref")).all()
    assert [(r, json.loads(d)) for r, d in stored] == [(r, json.loads(d)) for r, d in revised]
    assert [json.loads(d)["tasks"][0]["action"] for _, d in stored] == ["p.act"] * 6


def test_a_definition_too_large_for_its_row_still_goes_out_of_line_and_reads_back(pg: Session, tmp_path: Path):
    """200 tasks of random words: tens of KB compressed, more than any row holds."""
    from attune.workflows.parser import Locator, parse_yaml

    body = _big_workflow(7, tasks=200)
    write_pack(tmp_path, "p", {"huge.yaml": body}, {"act.yaml": ACTION})
    pack = _pack(pg, "p")
    result = sync_whole(pg, tmp_path, pack)
    assert result.registered_count == 1 and not result.errors
    assert _toasted(pg, "workflow_definitions") > 0 and _toasted(pg, "workflow_revisions") > 0
    row = "SELECT pg_column_size(definition), CAST(definition AS TEXT) FROM workflow_definitions"
    size, stored = pg.execute(text(row)).one()
    assert size > 8000
    parsed, _ = parse_yaml(body, Locator(body))
    tasks = json.loads(stored)["tasks"]
    assert [(t["name"], t["input"]) for t in tasks] == [(t["name"], t["input"]) for t in parsed["tasks"]]


def test_the_three_tables_keep_rows_of_up_to_half_a_page(pg: Session) -> None:
    rows = pg.execute(
        text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:t) ORDER BY relname"), {"t": list(TABLES)}
    )
    assert {name: options for name, options in rows} == {t: ["toast_tuple_target=4080"] for t in TABLES}
