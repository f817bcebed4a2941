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


# issue 13: Attune's action-linked layout (actions/<name>.yaml with workflow_file, the graph in
# actions/workflows/<name>.workflow.yaml; crates/common/src/workflow/loader.rs lines 127-130
# and 314) beside the classic one, synced whole and in chunks.
GRAPH = 'version: "1"\ntasks:\n  - name: a\n    action: {action}\n'
LAYOUT_CHANGES = ["none", "action-label", "graph-removed", "graph-added", "shadowed", "graph-broken"]


def _attune_layout(tmp_path: Path, ref: str) -> Path:
    root = write_pack(
        tmp_path,
        ref,
        {f"w{i}.yaml": workflow_yaml(f"{ref}.g0", desc=f"wf {i}") for i in range(3)},  # calls a linked workflow
        {"echo.yaml": ACTION},
    )
    linked = root / "actions" / "workflows"
    linked.mkdir()
    for i in range(4):
        (linked / f"g{i}.workflow.yaml").write_text(GRAPH.format(action=f"{ref}.echo"))
    for i in range(2):
        (root / "actions" / f"g{i}.yaml").write_text(
            f"ref: {ref}.g{i}\nlabel: Linked {i}\nworkflow_file: workflows/g{i}.workflow.yaml\n"
        )
    return root


def _layout_change(root: Path, change: str) -> None:
    ref = root.name
    linked = root / "actions" / "workflows"
    if change == "action-label":
        (root / "actions" / "g0.yaml").write_text(
            f"ref: {ref}.g0\nlabel: Renamed\nworkflow_file: workflows/g0.workflow.yaml\n"
        )
    if change == "graph-removed":
        (linked / "g3.workflow.yaml").unlink()
    if change == "graph-added":
        (linked / "g9.workflow.yaml").write_text(GRAPH.format(action=f"{ref}.w1"))  # a workflow is an action
    if change == "shadowed":
        (linked / "w1.workflow.yaml").write_text(GRAPH.format(action=f"{ref}.echo"))
    if change == "graph-broken":
        (linked / "g2.workflow.yaml").write_text(BROKEN)


@pytest.mark.parametrize("change", LAYOUT_CHANGES)
def test_whole_and_chunked_agree_on_attunes_layout(session, tmp_path, change):
    outcomes = {}
    for way in ("whole", "chunked"):
        ref = f"lay-{way}"
        root = _attune_layout(tmp_path, ref)
        pack = _pack(session, ref)
        first = sync_whole(session, tmp_path, pack)
        assert first.errors == [] and first.registered_count == 7, first.errors
        _layout_change(root, change)
        result = sync_whole(session, tmp_path, pack) if way == "whole" else sync_chunked(session, tmp_path, pack)
        outcomes[way] = (comparable(result, ref), state(session, ref))
    assert outcomes["whole"] == outcomes["chunked"]
    workflows = outcomes["whole"][1][0]
    sources = dict(workflows)
    assert sources["P.g0"] == "actions/workflows/g0.workflow.yaml"
    if change == "shadowed":  # the actions/workflows/ copy wins, and the sync result says so
        assert sources["P.w1"] == "actions/workflows/w1.workflow.yaml"
        assert "shadowed-workflow" in outcomes["whole"][0]
    if change == "graph-removed":
        assert "P.g3" not in sources
    if change == "graph-added":
        assert "P.g9" in sources
    if change == "graph-broken":
        assert "P.g2" not in sources or "Validation failed for P.g2" in outcomes["whole"][0]


def test_a_linked_workflow_follows_its_action_file(session, tmp_path):
    from attune.workflows.models import WorkflowDefinition

    root = _attune_layout(tmp_path, "follow")
    pack = _pack(session, "follow")
    sync_whole(session, tmp_path, pack)
    _layout_change(root, "action-label")  # the graph file is untouched
    sync_whole(session, tmp_path, pack)
    session.expire_all()
    wf = session.get(
        WorkflowDefinition,
        session.execute(text("SELECT id FROM workflow_definitions WHERE ref = 'follow.g0'")).scalar_one(),
    )
    assert wf is not None and wf.label == "Renamed"


def test_a_workflow_of_another_pack_is_callable_as_an_action(session, tmp_path):
    # issue 13: Attune registers an action for every workflow (crates/common/src/workflow/
    # registrar.rs lines 1-6), so `action: other.flow` resolves to another pack's workflow
    write_pack(tmp_path, "other", {"flow.yaml": workflow_yaml("other.echo")}, {"echo.yaml": ACTION})
    sync_whole(session, tmp_path, _pack(session, "other"))
    write_pack(tmp_path, "caller", {"main.yaml": workflow_yaml("other.flow"), "bad.yaml": workflow_yaml("other.nope")})
    result = sync_whole(session, tmp_path, _pack(session, "caller"))
    assert [w.ref_name for w in result.workflows] == ["caller.main"]
    [error] = result.errors
    assert error.startswith("Validation failed for caller.bad: Task 'start' references undefined action 'other.nope'")


def test_a_pack_without_workflow_files_says_so(session, tmp_path):
    write_pack(tmp_path, "bare", {}, {"echo.yaml": ACTION})
    result = sync_whole(session, tmp_path, _pack(session, "bare"))
    assert result.loaded_count == 0
    assert [n["code"] for n in result.notes] == ["no-workflows"]


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
    # the pack's fingerprint is the one its last sync stored: not even the action file is read
    assert reads == []
    assert warm == cold.model_copy(update={"workflows": warm.workflows, "unchanged_count": 5})
    assert all(not w.created and not w.changed for w in warm.workflows)
    # without the stored state (the full path): the action file only (actions are few and always read)
    session.execute(text("DELETE FROM pack_sync_state"))
    again = sync_whole(session, tmp_path, pack)
    assert reads == ["echo.yaml"] and again == warm


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


@pytest.mark.parametrize("way", ["whole", "chunked"])
def test_full_resync_of_identical_files_changes_nothing(session, tmp_path, way):
    """?full=true reads every file again; `changed` says whether the stored definition changed,
    and a workflow left as it was keeps its updated_at."""
    ref = f"same-{way}"
    root = write_pack(tmp_path, ref, {f"w{i}.yaml": workflow_yaml(f"{ref}.echo", desc=f"wf {i}") for i in range(4)},
                      {"echo.yaml": ACTION})  # fmt: skip
    pack = _pack(session, ref)
    first = sync_whole(session, tmp_path, pack)
    assert [w.changed for w in first.workflows] == [True] * 4
    assert all(w.ref == w.ref_name for w in first.workflows)

    def stamps() -> dict[str, object]:
        rows = session.execute(text("SELECT ref, updated_at FROM workflow_definitions WHERE ref LIKE :p"),
                               {"p": ref + ".%"})  # fmt: skip
        return dict(rows.all())

    before = stamps()
    again = sync_whole if way == "whole" else sync_chunked
    full = again(session, tmp_path, pack, force=True)
    assert full.unchanged_count == 0 and full.registered_count == 4
    assert [w.changed for w in full.workflows] == [False] * 4
    assert stamps() == before
    # an edit is a change, for that workflow only; so is a file renamed (a.yaml -> a.yml)
    (root / "workflows" / "w1.yaml").write_text(workflow_yaml(f"{ref}.echo", desc="edited"))
    (root / "workflows" / "w2.yaml").rename(root / "workflows" / "w2.yml")
    edited = again(session, tmp_path, pack, force=True)
    assert {w.ref: w.changed for w in edited.workflows} == {
        f"{ref}.w0": False, f"{ref}.w1": True, f"{ref}.w2": True, f"{ref}.w3": False,
    }  # fmt: skip
    after = stamps()
    assert after[f"{ref}.w0"] == before[f"{ref}.w0"] and after[f"{ref}.w1"] != before[f"{ref}.w1"]


def test_missing_pack_directory_names_the_path(session, tmp_path):
    from attune.sync import engine
    from attune.sync.schemas import DIRECTORY_NOT_FOUND

    pack = _pack(session, "nowhere")
    result = sync_whole(session, tmp_path, pack)
    assert result.errors == [DIRECTORY_NOT_FOUND] and result.loaded_count == result.registered_count == 0
    assert result.pack_dir == str(tmp_path / "nowhere")
    dumped = result.model_dump(mode="json")
    assert dumped["error_diagnostics"] == {} and dumped["unchanged_count"] == 0
    checked = engine.validate(session, _target(session, tmp_path, pack))
    assert checked.pack_dir == str(tmp_path / "nowhere") and checked.errors == {"nowhere": [DIRECTORY_NOT_FOUND]}


def test_own_workflow_refs_are_answered_as_the_listing_would(tmp_path: Path) -> None:
    """A chunk asks whether a called ref is one of its pack's workflows without listing the
    pack (engine.Listing.has_ref): the answer must be the listing's, for every layout."""
    from attune.sync.engine import Listing, Target
    from attune.workflows.loader import list_workflow_files, workflow_name

    root = tmp_path / "p"
    for folder in ("workflows", "actions/workflows"):
        (root / folder).mkdir(parents=True)
    for path in ("workflows/a.yaml", "workflows/b.yml", "workflows/c.workflow.yaml", "actions/workflows/d.workflow.yml",
                 "actions/workflows/e.yaml", "workflows/bad name.yaml", "workflows/f.txt", "workflows/g.workflow.workflow.yaml"):  # fmt: skip
        (root / path).write_text("x")
    (root / "workflows" / "dir.yaml").mkdir()
    (root / "workflows" / "link.yaml").symlink_to(root / "workflows" / "a.yaml")
    listing = Listing(Target(uuid.uuid4(), 1, "p", root, 1 << 20))
    listed = {"p." + workflow_name(path) for path in list_workflow_files(root) or []}
    asked = ["p.a", "p.b", "p.c", "p.d", "p.e", "p.bad name", "p.f", "p.dir", "p.link", "p.c.workflow", "q.a", "p.",
             "p.../p/workflows/a", "p.a\x00", "p.g", "p.g.workflow"]  # fmt: skip
    assert {ref for ref in asked if listing.has_ref(ref)} == listed & set(asked)


def test_large_definitions_are_stored_with_lz4_where_the_server_has_it(session, tmp_path):
    """db/copy.py: the staging COPY asks for lz4 (half pglz's server time on 10,000
    definitions); the registry and the revisions keep the staged values' compression."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("TOAST compression is Postgres's")
    if not session.execute(text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                "WHERE name = 'default_toast_compression'")).scalar():  # fmt: skip
        pytest.skip("this Postgres was built without lz4")
    pack = _pack(session, "big")
    big = workflow_yaml("big.echo", desc="".join(f"step {i} of a long description. " for i in range(400)))
    write_pack(tmp_path, "big", {"large.yaml": big}, {"echo.yaml": ACTION})
    result = sync_whole(session, tmp_path, pack)
    assert result.registered_count == 1, result.errors
    for table in ("workflow_definitions", "workflow_revisions"):
        method = session.execute(text(f"SELECT pg_column_compression(definition) FROM {table} WHERE ref = 'big.large'"))
        assert method.scalar() == "lz4", table


def test_two_action_files_of_one_ref_the_first_keeps_it_the_pack_syncs(session, tmp_path):
    """actions/b.yaml declaring the ref of actions/a.yaml (found from outside: the pack's
    whole sync failed on the registry's one row per ref, a 500 for the caller): a is
    registered, b is an error naming both files, the workflows register; the offline
    check says the same."""
    from attune.workflows.checker import check_pack
    from attune.workflows.loader import load_pack_dir

    pack = _pack(session, "dupa")
    write_pack(tmp_path, "dupa", {"w.yaml": workflow_yaml("dupa.a")},
               {"a.yaml": "runner_type: shell\nentry_point: a.sh\n",
                "b.yaml": "ref: dupa.a\nrunner_type: python\nentry_point: b.py\n"})  # fmt: skip
    result = sync_whole(session, tmp_path, pack)
    assert result.registered_count == 1 and not result.errors
    assert result.actions.registered == ["dupa.a"]
    assert result.actions.errors == [
        "Action dupa.a (actions/b.yaml): 'actions/b.yaml' and 'actions/a.yaml' declare the same action ref 'dupa.a'"
    ]
    rows = session.execute(text("SELECT ref, source_file, entry_point FROM actions")).all()
    assert [tuple(r) for r in rows] == [("dupa.a", "actions/a.yaml", "a.sh")]
    report = check_pack(load_pack_dir(tmp_path / "dupa", "dupa"))
    codes = {a.file: [d.code for d in a.diagnostics] for a in report.actions}
    assert codes == {"actions/a.yaml": [], "actions/b.yaml": ["duplicate-ref"]}
