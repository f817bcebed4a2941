"""A whole-pack sync's writes sent to Postgres in one round trip (sync/write.py, issue 15)
against the same statements run one by one (what SQLite runs): for any sequence of a
pack's files (workflows added, changed, broken, removed; actions added, changed, removed;
a forced re-read), the same result and the same rows in every table the sync writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from attune.sync import engine, write
from tests.conftest import workflow_yaml
from tests.unit.test_engine import _pack, _target, comparable, db_engine, session, write_pack

__all__ = ["db_engine", "session"]  # fixtures of test_engine, used here

TABLES = {
    "workflow_definitions": "SELECT ref, name, label, description, version, CAST(param_schema AS TEXT), "
    "CAST(definition AS TEXT), CAST(tags AS TEXT), CAST(warnings AS TEXT), source_file, content_hash, revision "
    "FROM workflow_definitions ORDER BY ref",
    "workflow_revisions": "SELECT ref, number, change, definition_hash, CAST(definition AS TEXT), source_file, "
    "file_sha256, author FROM workflow_revisions ORDER BY ref, number",
    "pack_files": "SELECT source_file, ref, stat, content_hash, status, CAST(deps AS TEXT), CAST(unresolved AS TEXT), "
    "CAST(diagnostics AS TEXT) FROM pack_files ORDER BY source_file",
    "actions": "SELECT ref, label, runner_type, entry_point, CAST(parameters AS TEXT), source_file, content_hash "
    "FROM actions ORDER BY ref",
    "pack_sync_state": "SELECT fingerprint, CAST(externals AS TEXT), CAST(summary AS TEXT) FROM pack_sync_state",
    "sync_staging": "SELECT count(*) FROM sync_staging",
}
WORKFLOWS = {
    "absent": None,
    "a": workflow_yaml("pw.echo", desc="first"),
    "b": workflow_yaml("pw.other", desc="second"),  # calls an action that may be absent
    "c": workflow_yaml("elsewhere.x", desc="third"),  # a call to no pack
    "broken": "tasks: [unclosed\n",
    "invalid": "ref: pw.x\ntasks: 3\n",
}
ACTIONS = {
    "absent": None,
    "v1": "runner_type: shell\nentry_point: run.sh\n",
    "v2": "runner_type: python\nentry_point: run.py\nparameters: {n: {type: integer}}\n",
    "broken": "runner_type: [\n",
}


@pytest.fixture
def pg(session: Session) -> Session:
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the pipelined writes are Postgres's (SQLite runs them one by one)")
    return session


def _snapshot(s: Session) -> dict[str, list]:
    return {name: [tuple(r) for r in s.execute(text(sql))] for name, sql in TABLES.items()}


def _lay_out(root: Path, workflows: dict[str, str], actions: dict[str, str]) -> None:
    shutil.rmtree(root / "pw", ignore_errors=True)
    wf = {f"w{i}.yaml": WORKFLOWS[v] for i, v in workflows.items() if WORKFLOWS[v] is not None}
    acts = {f"{n}.yaml": ACTIONS[v] for n, v in actions.items() if ACTIONS[v] is not None}
    write_pack(root, "pw", wf, acts)


step = st.tuples(
    st.fixed_dictionaries({i: st.sampled_from(list(WORKFLOWS)) for i in range(4)}),
    st.fixed_dictionaries({n: st.sampled_from(list(ACTIONS)) for n in ("echo", "other")}),
    st.booleans(),  # forced
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=5))
def test_pipelined_writes_equal_one_by_one(pg: Session, tmp_path_factory, monkeypatch, steps) -> None:
    s = pg
    for table in ("sync_staging", "pack_files", "workflow_revisions", "workflow_definitions", "actions",
                  "pack_sync_state", "jobs", "packs"):  # fmt: skip
        s.execute(text(f"DELETE FROM {table}"))
    s.commit()
    root = tmp_path_factory.mktemp("packs")
    pack = _pack(s, "pw")
    for workflows, actions, forced in steps:
        _lay_out(root, workflows, actions)
        target = _target(s, root, pack, force=forced)
        nested = s.begin_nested()
        with monkeypatch.context() as m:
            m.setattr(write, "_pipelined", write._one_by_one)  # the reference: one statement at a time
            expected = comparable(engine.sync_whole(s, target), "pw")
        wanted = _snapshot(s)
        nested.rollback()
        got = comparable(engine.sync_whole(s, target), "pw")
        assert got == expected
        assert _snapshot(s) == wanted
        s.commit()
