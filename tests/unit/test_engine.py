"""The sync engine, called directly on SQLite and on Postgres (no API, no worker).

A pack synced whole (one step, unchanged files read from the file cache) and the same
pack synced in chunks (every file staged, then merged) give the same result and leave
the same rows, after every kind of change. Folders that are links, files, unreadable or
replaced mid-sync never cost a registered workflow.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from tests.conftest import DEFAULT_DB, workflow_yaml

BROKEN = "version: '1.0'\ndescription: no tasks\n"
ACTION = "runner_type: shell\nentry_point: run.sh\n"


def _postgres_url() -> str:
    from sqlalchemy import make_url

    base = make_url(os.environ.get("ATTUNE_TEST_DATABASE_URL", DEFAULT_DB))
    return base.set(database=f"{base.database}_engine").render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_engine(request, tmp_path_factory) -> Iterator[Engine]:
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from attune.db.engine import make_engine
    from attune.db.migrate import ensure_database, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('engine') / 'engine.db'}"
    else:
        url = _postgres_url()
        u = make_url(url)
        admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        except OperationalError:
            pytest.skip("no Postgres server here (CI has one)")
        finally:
            admin.dispose()
        ensure_database(url)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db_engine: Engine) -> Iterator[Session]:
    with Session(db_engine, expire_on_commit=False) as s:
        for table in ("sync_staging", "sync_chunks", "pack_files", "workflow_revisions", "workflow_definitions",
                      "actions", "jobs", "packs"):  # fmt: skip
            s.execute(text(f"DELETE FROM {table}"))
        s.commit()
        yield s


def _pack(session: Session, ref: str):
    from attune.packs.models import Pack

    pack = Pack(ref=ref, label=ref, version="1")
    session.add(pack)
    session.commit()
    return pack


def _target(session: Session, root: Path, pack, *, force: bool = False, folders: str = ""):
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.sync.engine import Target

    job = jobs.create_job(session, pack, JobKind.SYNC, JobTrigger.MANUAL)
    session.commit()
    return Target(job.id, pack.id, pack.ref, root / pack.ref, 1 << 20, force, folders)


def sync_whole(session: Session, root: Path, pack, *, force: bool = False):
    from attune.sync import engine

    result = engine.sync_whole(session, _target(session, root, pack, force=force))
    session.commit()
    return result


def sync_chunked(session: Session, root: Path, pack, *, size: int = 3, force: bool = False):
    from attune.sync import engine
    from attune.sync.engine import Slice
    from attune.workflows.loader import list_workflow_files

    _, folders = engine.inspect_folders(root / pack.ref)
    target = _target(session, root, pack, force=force, folders=folders)
    names = list_workflow_files(target.root) or []
    for index, start in enumerate(range(0, len(names), size)):
        engine.stage_chunk(session, target, part=Slice(index, start, names[start : start + size]))
        session.commit()
    result = engine.finish_chunked(session, target)
    session.commit()
    return result


def write_pack(root: Path, ref: str, workflows: dict[str, str], actions: dict[str, str] | None = None) -> Path:
    pack = root / ref
    (pack / "workflows").mkdir(parents=True, exist_ok=True)
    (pack / "actions").mkdir(exist_ok=True)
    for name, body in workflows.items():
        (pack / "workflows" / name).write_text(body)
    for name, body in (actions or {}).items():
        (pack / "actions" / name).write_text(body)
    return pack


def state(session: Session, ref: str) -> tuple:
    """The registry and file cache of a pack, its ref replaced by P (to compare two packs)."""
    p = ref + "."
    wfs = session.execute(
        text("SELECT ref, source_file, updated_at FROM workflow_definitions WHERE ref LIKE :p ORDER BY ref"),
        {"p": p + "%"},
    ).all()
    files = session.execute(
        text("SELECT source_file, ref, status FROM pack_files WHERE ref LIKE :p ORDER BY source_file"), {"p": p + "%"}
    ).all()
    acts = session.execute(text("SELECT ref FROM actions WHERE ref LIKE :p ORDER BY ref"), {"p": p + "%"}).all()
    return (
        [(r.replace(p, "P."), f) for r, f, _ in wfs],
        [(f, r.replace(p, "P."), st) for f, r, st in files],
        [a[0].replace(p, "P.") for a in acts],
    )


def comparable(result, ref: str) -> str:
    data = result.model_dump(mode="json", exclude={"job_id"})
    for w in data["workflows"]:
        w["workflow_def_id"] = None
    return repr(data).replace(ref + ".", "P.").replace(f"'{ref}'", "'P'")


CHANGES = ["none", "removed", "added", "edited", "broken", "fixed", "refused", "mixed", "all-removed", "action-removed"]


def _change(pack: Path, change: str) -> None:
    wf = pack / "workflows"
    ref = pack.name
    if change in ("removed", "mixed"):
        (wf / "w0.yaml").unlink()
    if change in ("added", "mixed"):
        (wf / "w9.yaml").write_text(workflow_yaml(f"{ref}.echo", desc="new"))
    if change in ("edited", "mixed"):
        (wf / "w1.yaml").write_text(workflow_yaml(f"{ref}.echo", desc="edited"))
    if change == "broken":
        (wf / "w2.yaml").write_text(BROKEN)
    if change in ("fixed", "mixed"):
        (wf / "bad.yaml").write_text(workflow_yaml(f"{ref}.echo", desc="fixed"))
    if change == "refused":
        (wf / "w3.yaml").write_bytes(b"\xff\xfe not utf-8")
    if change == "all-removed":
        for f in wf.iterdir():
            f.unlink()
    if change == "action-removed":
        (pack / "actions" / "echo.yaml").unlink()


@pytest.mark.parametrize("force", [False, True], ids=["cached", "full"])
@pytest.mark.parametrize("change", CHANGES)
def test_whole_and_chunked_agree(session, tmp_path, change, force):
    """Each kind of change, synced whole and (from the same start) in chunks."""
    outcomes = {}
    for way in ("whole", "chunked"):
        ref = f"chg-{way}"
        files = {f"w{i}.yaml": workflow_yaml(f"{ref}.echo", desc=f"wf {i}") for i in range(6)}
        files["bad.yaml"] = BROKEN
        files["calls_missing.yaml"] = workflow_yaml(f"{ref}.nope")
        root = write_pack(tmp_path, ref, files, {"echo.yaml": ACTION})
        pack = _pack(session, ref)
        sync_whole(session, tmp_path, pack)
        _change(root, change)
        if way == "whole":
            result = sync_whole(session, tmp_path, pack, force=force)
        else:
            result = sync_chunked(session, tmp_path, pack, force=force)
        outcomes[way] = (comparable(result, ref), state(session, ref))
    assert outcomes["whole"] == outcomes["chunked"]
    whole = outcomes["whole"][1]
    if change == "all-removed":  # the last file's workflow goes too, with or without ?full
        assert whole[0] == [] and whole[1] == []
    if change == "none" and not force:
        assert "'unchanged_count': 8" in outcomes["whole"][0]


def test_unchanged_resync_reads_nothing(session, tmp_path, monkeypatch):
    from attune.workflows import loader

    write_pack(tmp_path, "fast", {f"w{i}.yaml": workflow_yaml("fast.echo") for i in range(5)}, {"echo.yaml": ACTION})
    pack = _pack(session, "fast")
    cold = sync_whole(session, tmp_path, pack)
    assert cold.registered_count == 5 and cold.unchanged_count == 0
    reads = []
    real = loader._read_regular
    monkeypatch.setattr(loader, "_read_regular", lambda *a: reads.append(a[1]) or real(*a))
    warm = sync_whole(session, tmp_path, pack)
    assert warm.unchanged_count == 5 and warm.registered_count == 5
    assert reads == ["echo.yaml"]  # the action file only (actions are few and always read)


def _registered(session: Session, ref: str) -> list[str]:
    return [r for (r,) in session.execute(text("SELECT ref FROM workflow_definitions WHERE ref LIKE :p ORDER BY ref"),
                                          {"p": ref + ".%"})]  # fmt: skip


def _replace_with_link(folder: Path) -> None:
    elsewhere = folder.parent.parent / (folder.parent.name + "-" + folder.name + "-elsewhere")
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere)


def _replace_with_empty_link(folder: Path) -> None:
    empty = folder.parent.parent / (folder.parent.name + "-" + folder.name + "-empty")
    empty.mkdir()
    shutil.rmtree(folder)
    folder.symlink_to(empty)


def _replace_with_file(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.write_text("not a directory\n")


@pytest.mark.parametrize("folder", ["workflows", "actions"])
@pytest.mark.parametrize(
    "damage", [_replace_with_link, _replace_with_empty_link, _replace_with_file], ids=["link", "empty-link", "file"]
)
def test_unusable_folder_changes_nothing(session, tmp_path, folder, damage):
    root = write_pack(tmp_path, "keep", {"a.yaml": workflow_yaml("keep.echo"), "b.yaml": workflow_yaml("keep.echo")},
                      {"echo.yaml": ACTION})  # fmt: skip
    pack = _pack(session, "keep")
    assert sync_whole(session, tmp_path, pack).registered_count == 2
    before = state(session, "keep")
    damage(root / folder)
    for sync in (sync_whole, sync_chunked):
        result = sync(session, tmp_path, pack) if sync is sync_whole else _chunked_refused(session, tmp_path, pack)
        if result is not None:
            assert result.registered_count == 0 and result.removed == []
            assert f"'{folder}" in result.errors[0] and "nothing changed" in result.errors[0]
        assert state(session, "keep") == before
    # the validate job says so too, as an error
    from attune.sync import engine

    checked = engine.validate(session, _target(session, tmp_path, pack))
    assert checked.error_count == 1 and "nothing changed" in checked.errors["keep"][0]


def _chunked_refused(session, tmp_path, pack):
    """A chunk or the finishing step of a chunked sync meeting an unusable folder fails."""
    from attune.sync import engine
    from attune.sync.engine import PackChanged, Slice

    target = _target(session, tmp_path, pack)
    with pytest.raises(PackChanged):
        engine.stage_chunk(session, target, part=Slice(0, 0, ["a.yaml"]))
    session.rollback()
    with pytest.raises(PackChanged):
        engine.finish_chunked(session, target)
    session.rollback()
    return None


@pytest.mark.parametrize("folder", ["workflows", "actions", "pack"])
def test_folder_removed_mid_sync_fails_and_keeps_everything(session, tmp_path, monkeypatch, folder):
    """The folder goes while the files are being checked: the sync fails, nothing is written."""
    from attune.sync import engine
    from attune.sync.engine import PackChanged

    files = {f"w{i}.yaml": workflow_yaml("mid.echo") for i in range(4)}
    root = write_pack(tmp_path, "mid", files, {"echo.yaml": ACTION})
    pack = _pack(session, "mid")
    sync_whole(session, tmp_path, pack)
    (root / "workflows" / "w0.yaml").write_text(workflow_yaml("mid.echo", desc="edited"))
    before = state(session, "mid")
    real = engine._check_file
    victim = root if folder == "pack" else root / folder

    def check_then_remove(*args):
        if victim.exists():
            shutil.move(victim, tmp_path / f"moved-{folder}")
        return real(*args)

    monkeypatch.setattr(engine, "_check_file", check_then_remove)
    with pytest.raises(PackChanged):
        engine.sync_whole(session, _target(session, tmp_path, pack))
    session.rollback()
    assert state(session, "mid") == before
    assert len(before[2]) == 1  # the action is still registered


def test_validate_uses_the_offline_checker(session, tmp_path, monkeypatch):
    """One validate driver: the job calls the offline command's check_pack."""
    from attune.sync import engine
    from attune.workflows import checker

    write_pack(tmp_path, "val", {"ok.yaml": workflow_yaml("val.echo"), "bad.yaml": BROKEN}, {"echo.yaml": ACTION})
    pack = _pack(session, "val")
    calls = []
    real = checker.check_pack
    monkeypatch.setattr(engine, "check_pack", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = engine.validate(session, _target(session, tmp_path, pack))
    assert calls == [1]
    assert result.validated_count == 2 and result.error_count == 1 and list(result.errors) == ["val.bad"]
    assert session.execute(text("SELECT count(*) FROM workflow_definitions")).scalar() == 0


def test_staging_is_dropped(session, tmp_path):
    write_pack(tmp_path, "drop", {f"w{i}.yaml": workflow_yaml("drop.echo") for i in range(7)}, {"echo.yaml": ACTION})
    pack = _pack(session, "drop")
    sync_chunked(session, tmp_path, pack)
    sync_whole(session, tmp_path, pack, force=True)
    assert session.execute(text("SELECT count(*) FROM sync_staging")).scalar() == 0
    assert session.execute(text("SELECT count(*) FROM sync_chunks")).scalar() == 0
    uuid.UUID(int=0)
