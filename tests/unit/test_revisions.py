"""Revisions as the sync engine writes them, on SQLite and on Postgres: one statement per
sync (never one per workflow), in the sync's own transaction (a failed sync leaves none);
and the content helpers a diff is made of."""

from __future__ import annotations

import importlib.util

import pytest
from sqlalchemy import event, text

from attune.db.pipeline import Pipeline
from tests.conftest import ROOT, workflow_yaml
from tests.unit.test_engine import _pack, _target, db_engine, session, sync_chunked, sync_whole, write_pack

__all__ = ["db_engine", "session"]  # fixtures


def _revisions(session) -> list[tuple]:
    rows = session.execute(text("SELECT ref, number, change FROM workflow_revisions ORDER BY ref, number")).all()
    return [tuple(r) for r in rows]


class Statements:
    """The INSERT statements into workflow_revisions a block sends: through SQLAlchemy, or
    in a pipeline (db/pipeline.py, on Postgres: the driver's, no SQLAlchemy event)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.seen: list[str] = []
        self._add = Pipeline.add

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if "INSERT INTO workflow_revisions" in statement:
            self.seen.append("many" if executemany else "one")

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        add, seen = self._add, self.seen

        def recorded(pipeline, stmt, params):
            if "INSERT INTO workflow_revisions" in stmt.text and pipeline._session.get_bind().dialect.name != "sqlite":
                seen.append("one")  # SQLite runs a pipeline's statements through SQLAlchemy: seen above
            return add(pipeline, stmt, params)

        Pipeline.add = recorded  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)
        Pipeline.add = self._add  # type: ignore[method-assign]


@pytest.mark.parametrize("sync", [sync_whole, sync_chunked], ids=["whole", "chunked"])
def test_one_statement_per_sync_whatever_the_number_of_workflows(session, db_engine, tmp_path, sync):
    pack = _pack(session, "bulk")
    root = write_pack(tmp_path, "bulk", {f"w{i:02d}.yaml": workflow_yaml("bulk.echo") for i in range(30)},
                      {"echo.yaml": "runner_type: shell\n"})  # fmt: skip
    with Statements(db_engine) as st:
        sync(session, tmp_path, pack)
    assert st.seen == ["one"]
    assert len(_revisions(session)) == 30
    for i in range(0, 30, 2):
        (root / "workflows" / f"w{i:02d}.yaml").write_text(workflow_yaml("bulk.echo", desc=f"changed {i}"))
    for i in range(1, 30, 10):
        (root / "workflows" / f"w{i:02d}.yaml").unlink()
    with Statements(db_engine) as st:
        sync(session, tmp_path, pack)
    assert st.seen == ["one", "one"]  # the changed ones; the tombstones
    revs = _revisions(session)
    updated = [(f"bulk.w{i:02d}", 2, "update") for i in range(0, 30, 2)]
    removed = [(f"bulk.w{i:02d}", 2, "remove") for i in range(1, 30, 10)]
    assert [r for r in revs if r[1] == 2] == sorted(updated + removed)
    with Statements(db_engine) as st:  # nothing changed: no revision (a whole sync sends no statement)
        sync(session, tmp_path, pack)
    assert st.seen == ([] if sync is sync_whole else ["one"])
    assert _revisions(session) == revs


def test_a_failed_sync_leaves_no_revision(session, tmp_path):
    from attune.sync import engine

    pack = _pack(session, "fails")
    write_pack(tmp_path, "fails", {"a.yaml": workflow_yaml("fails.echo")}, {"echo.yaml": "runner_type: shell\n"})
    target = _target(session, tmp_path, pack)
    result = engine.sync_whole(session, target)
    assert result.registered_count == 1
    assert _revisions(session) == [("fails.a", 1, "create")]  # written, in the sync's transaction...
    session.rollback()  # ...which fails after it
    assert _revisions(session) == []
    assert session.execute(text("SELECT count(*) FROM workflow_definitions")).scalar() == 0
    sync_whole(session, tmp_path, pack)  # the next sync starts numbering at 1
    assert _revisions(session) == [("fails.a", 1, "create")]


def test_the_migration_hashes_as_the_sync_does():
    from attune.revisions.content import definition_hash

    path = ROOT / "shared/attune/db/migrations/versions/0007_workflow_revisions.py"
    spec = importlib.util.spec_from_file_location("m0007", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    d = {"version": "1", "tasks": [{"name": "a", "action": "x.y", "input": {"n": 1.5, "s": "é"}}], "label": "L"}
    reordered = {"label": "L", "tasks": [{"input": {"s": "é", "n": 1.5}, "action": "x.y", "name": "a"}], "version": "1"}
    assert module._hash(d) == definition_hash(d) == definition_hash(reordered)
    assert definition_hash(d) != definition_hash({**d, "label": "M"})


def test_yaml_diff_and_summary():
    from attune.revisions.content import summarise, to_yaml, unified_diff

    old = {"tasks": [{"next": [{"do": ["b"]}], "action": "p.x", "name": "a"}, {"name": "b", "action": "p.y"}],
           "version": "1", "description": "one\ntwo", "tags": ["t"]}  # fmt: skip
    new = {"tasks": [{"name": "a", "action": "p.z"}, {"name": "c", "action": "p.y"}], "version": "1", "tags": ["u"]}
    text_ = to_yaml(old)
    assert text_.index("version:") < text_.index("tasks:") < text_.index("tags:")  # the SPEC's order
    assert "- name: a\n  action: p.x\n" in text_ and "description: |-\n  one\n  two\n" in text_
    s = summarise(old, new)
    assert (s.tasks_added, s.tasks_removed, s.tasks_changed, s.fields_changed) == (
        ["c"], ["b"], ["a"], ["description", "tags"])  # fmt: skip
    d = unified_diff(old, new, old_label="x (1)", new_label="x (2)").splitlines()
    assert d[:2] == ["--- x (1)", "+++ x (2)"]
    assert "-  action: p.x" in d and "+  action: p.z" in d and "-description: |-" in d
    assert unified_diff(new, new, old_label="a", new_label="b") == ""
    assert to_yaml(None) == "" and summarise(None, None).empty


SHAPES = [  # definitions whose summary as a create the database computes (history.written)
    workflow_yaml("shape.echo"),
    'version: "1.0"\ntasks:\n  - name: only\n    action: shape.echo\n',
    'version: "1.0"\ndescription: "d"\ntags: [a, b]\nparameters:\n  x: {type: string}\ntasks:\n'
    "  - name: z_last\n    action: shape.echo\n    next: [{do: [a_first]}]\n  - name: a_first\n    action: shape.echo\n",
]


def test_a_created_revision_is_summarised_by_the_database_as_from_its_definition(session, tmp_path):
    """The plan's summary of a create (or of a return after removal) comes from the task
    names and fields the database reads out of the revision (no definition decoded); it
    equals ``summarise(None, definition)`` for every kind of definition, on both dialects."""
    import orjson

    from attune.revisions.content import summarise
    from attune.sync import engine, history

    pack = _pack(session, "shape")
    root = write_pack(tmp_path, "shape", {f"s{i}.yaml": body for i, body in enumerate(SHAPES)},
                      {"echo.yaml": "runner_type: shell\n"})  # fmt: skip
    for _round in ("create", "return"):
        target = _target(session, tmp_path, pack)
        engine.sync_whole(session, target)
        found = history.written(session, target.job_id)
        definitions = dict(
            session.execute(text("SELECT ref, CAST(definition AS TEXT) FROM workflow_definitions")).all()
        )
        assert set(found) == {f"shape.s{i}" for i in range(len(SHAPES))}
        for ref, (_, _, new, old, summary) in found.items():
            assert new is None and old is None
            assert summary == summarise(None, orjson.loads(definitions[ref])), ref
        session.commit()
        if _round == "create":  # removed (tombstones), then back: numbering goes on, summaries as creates
            moved = tmp_path / "parked"
            (root / "workflows").rename(moved)
            (root / "workflows").mkdir()
            sync_whole(session, tmp_path, pack)
            (root / "workflows").rmdir()
            moved.rename(root / "workflows")
    # an update keeps both definitions and no precomputed summary
    (root / "workflows" / "s0.yaml").write_text(workflow_yaml("shape.echo", desc="changed"))
    target = _target(session, tmp_path, pack)
    engine.sync_whole(session, target)
    (_, change, new, old, summary) = history.written(session, target.job_id)["shape.s0"]
    assert change == "update" and new is not None and old is not None and summary is None
    session.commit()
