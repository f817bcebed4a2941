"""A small pack's fingerprint (issue 15): a sync that replays the stored result answers
exactly what the full path answers, and leaves exactly the same rows, whatever happened to
the pack's files, to the packs it calls, or to its folders since its last sync.

Each step changes the pack (hypothesis draws the changes), then syncs it twice from the
same database state: once as it is (the replay when the fingerprint allows it), once with
its stored state dropped (the full path, which reads the cache row by row). Both results
and both sets of rows must be equal; the second sync is kept and the next step goes on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session

from tests.conftest import workflow_yaml
from tests.unit.test_engine import ACTION, BROKEN, _pack, _target, db_engine, session, sync_whole, write_pack

__all__ = ["db_engine", "session"]  # fixtures of test_engine, used here

OPS = [
    "edit", "touch", "same-text", "remove", "add", "break", "refuse", "other-action-gone", "other-action-back",
    "ghost-appears", "linked-add", "linked-remove", "workflows-gone", "workflows-back", "workflows-link",
    "action-edit", "subdir", "none",
]  # fmt: skip


def _rows(session: Session, ref: str) -> tuple:
    p = {"p": ref + ".%"}
    wfs = session.execute(
        text(
            "SELECT ref, source_file, CAST(definition AS TEXT), CAST(warnings AS TEXT), revision, content_hash "
            "FROM workflow_definitions WHERE ref LIKE :p ORDER BY ref"
        ),
        p,
    ).all()
    files = session.execute(
        text(
            "SELECT source_file, ref, status, stat, CAST(deps AS TEXT), CAST(unresolved AS TEXT), "
            "CAST(diagnostics AS TEXT) FROM pack_files WHERE ref LIKE :p ORDER BY source_file"
        ),
        p,
    ).all()
    acts = session.execute(
        text("SELECT ref, source_file, content_hash FROM actions WHERE ref LIKE :p ORDER BY ref"), p
    ).all()
    revs = session.execute(
        text("SELECT ref, number, change FROM workflow_revisions WHERE ref LIKE :p ORDER BY ref, number"), p
    ).all()
    return [tuple(r) for r in wfs], [tuple(r) for r in files], [tuple(r) for r in acts], [tuple(r) for r in revs]


def _apply(op: str, k: int, base: Path, pack: Path) -> None:
    wf = pack / "workflows"
    name = f"w{k}.yaml"
    if op == "edit" and wf.is_dir():
        (wf / name).write_text(workflow_yaml("fp.echo", desc=f"edited {os.urandom(3).hex()}"))
    elif op == "touch" and (wf / name).exists():
        st_ = (wf / name).stat()
        os.utime(wf / name, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000_000))
    elif op == "same-text" and (wf / name).exists():
        (wf / name).write_bytes((wf / name).read_bytes())
    elif op == "remove" and (wf / name).exists():
        (wf / name).unlink()
    elif op == "add" and wf.is_dir():
        (wf / f"n{k}.yaml").write_text(workflow_yaml("fpo.tool", desc="added"))
    elif op == "break" and wf.is_dir():
        (wf / name).write_text(BROKEN)
    elif op == "refuse" and wf.is_dir():
        (wf / name).write_bytes(b"\xff\xfe not utf-8")
    elif op == "other-action-gone":
        (base / "fpo" / "actions" / "tool.yaml").unlink(missing_ok=True)
    elif op == "other-action-back":
        (base / "fpo" / "actions" / "tool.yaml").write_text(ACTION)
    elif op == "ghost-appears":
        (base / "ghost" / "actions").mkdir(parents=True, exist_ok=True)
        (base / "ghost" / "actions" / "missing.yaml").write_text(ACTION)
    elif op == "linked-add":
        (pack / "actions" / "workflows").mkdir(exist_ok=True)
        (pack / "actions" / "workflows" / "linked.yaml").write_text(workflow_yaml("fp.echo"))
    elif op == "linked-remove":
        shutil.rmtree(pack / "actions" / "workflows", ignore_errors=True)
    elif op == "workflows-gone" and wf.is_dir() and not wf.is_symlink():
        shutil.move(wf, pack / "parked")
    elif op == "workflows-back" and (pack / "parked").exists():
        if wf.is_symlink():
            wf.unlink()
        shutil.move(pack / "parked", wf)
    elif op == "workflows-link" and wf.is_dir() and not wf.is_symlink():
        shutil.move(wf, pack / "parked")
        wf.symlink_to(pack / "parked")
    elif op == "action-edit":
        (pack / "actions" / "echo.yaml").write_text(ACTION + f"description: {k}\n")
    elif op == "subdir" and wf.is_dir():
        (wf / f"sub{k}").mkdir(exist_ok=True)


def _sync_other_packs(session: Session, base: Path, others: dict) -> None:
    for ref, pack in others.items():
        if (base / ref).is_dir():
            sync_whole(session, base, pack)


@pytest.fixture
def tree(session, tmp_path):
    """The pack under test (fp: valid workflows, one broken, calls to its own action, to
    another pack's action and to a pack that does not exist yet) and the packs it calls."""
    base = tmp_path / "packs"
    write_pack(base, "fpo", {"t.yaml": workflow_yaml("fpo.tool")}, {"tool.yaml": ACTION})
    files = {f"w{i}.yaml": workflow_yaml("fp.echo") for i in range(4)}
    files["calls_other.yaml"] = workflow_yaml("fpo.tool")
    files["calls_ghost.yaml"] = workflow_yaml("ghost.missing")
    files["bad.yaml"] = BROKEN
    write_pack(base, "fp", files, {"echo.yaml": ACTION})
    others = {"fpo": _pack(session, "fpo"), "ghost": _pack(session, "ghost")}
    _sync_other_packs(session, base, others)
    pack = _pack(session, "fp")
    sync_whole(session, base, pack)
    return base, pack, others


def _dump(result) -> dict:
    """The result without its job, and without the ids of workflows it created (a sequence
    is not rolled back with the savepoint on Postgres: the two syncs' new ids differ)."""
    data = result.model_dump(exclude={"job_id"})
    for w in data["workflows"]:
        if w["created"]:
            w["workflow_def_id"] = None
    return data


def _compare(session: Session, base: Path, pack) -> bool:
    """Syncs the pack as it is and with its stored state dropped, from the same database
    state; asserts both equal; keeps the second. Returns whether the first replayed."""
    from attune.sync import engine, fingerprint

    replayed = []
    real = fingerprint.replay

    def spy(*a, **kw):
        found = real(*a, **kw)
        replayed.append(found is not None)
        return found

    target = _target(session, base, pack)  # (commits its job row)
    savepoint = session.begin_nested()
    fingerprint.replay = spy
    try:
        fast = engine.sync_whole(session, target)
        fast_rows = _rows(session, pack.ref)
    finally:
        fingerprint.replay = real
        savepoint.rollback()
    session.execute(text("DELETE FROM pack_sync_state WHERE pack_id = :p"), {"p": pack.id})
    full = engine.sync_whole(session, _target(session, base, pack))
    full_rows = _rows(session, pack.ref)
    session.commit()
    assert _dump(fast) == _dump(full)
    assert fast_rows == full_rows
    return any(replayed)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 4)), min_size=1, max_size=6))
def test_a_replayed_sync_equals_the_full_path(session, tree, steps):
    base, pack, others = tree
    session.execute(text("DELETE FROM pack_sync_state"))
    session.commit()
    sync_whole(session, base, pack)  # the pack as the fixture (or the last example) left it
    for op, k in steps:
        _apply(op, k, base, base / "fp")
        _sync_other_packs(session, base, others)
        _compare(session, base, pack)
        _compare(session, base, pack)  # and the sync after it: nothing changed in between


def test_replays_only_what_stayed_the_same(session, tree):
    """The replay is taken when nothing changed, refused after each kind of change that
    matters, and taken again once the full path stored the new state."""
    base, pack, others = tree
    assert _compare(session, base, pack)  # the fixture's sync stored the state
    for op, k in [("edit", 1), ("touch", 2), ("same-text", 3), ("remove", 0), ("add", 1), ("action-edit", 0),
                  ("subdir", 0), ("ghost-appears", 0)]:  # fmt: skip
        _apply(op, k, base, base / "fp")
        _sync_other_packs(session, base, others)
        assert not _compare(session, base, pack), op
        assert _compare(session, base, pack), op
    # another pack's action the pack calls goes away: its files did not change, its result did
    _apply("other-action-gone", 0, base, base / "fp")
    _sync_other_packs(session, base, others)
    assert not _compare(session, base, pack)
    # a layout read at every sync, or a file the loader refuses: never replayed
    for op in ("linked-add", "refuse"):
        _apply(op, 0, base, base / "fp")
        assert not _compare(session, base, pack), op
        assert not _compare(session, base, pack), op


def test_a_driver_error_of_the_replay_is_transient():
    """jobs/replay.py works on the driver's connection: a dropped connection there is the
    driver's own error, not SQLAlchemy's, and the group task must be retried (not failed)."""
    import psycopg

    from attune.jobs.pipeline import transient

    assert transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert transient(psycopg.InterfaceError("the connection is closed"))
    assert not transient(psycopg.errors.UniqueViolation("duplicate key"))
    assert not transient(ValueError("not the database"))
