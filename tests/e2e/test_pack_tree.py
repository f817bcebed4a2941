"""A tree of small packs synced in bulk (issue 15): every pack's result and rows equal those
of a sync of that pack alone, through changes, removals, broken and refused files, calls
between packs that stop resolving, folders that go away, and unchanged re-syncs (which a
bulk sync answers from each pack's fingerprint).

Two copies of one tree, told apart by their prefix: the packs ``ta_*`` are synced in bulk
(POST /api/v1/packs/sync, several packs per worker task), the packs ``tb_*`` one by one
(POST /api/v1/packs/{ref}/workflows/sync). Both copies go through the same changes; after
each round, results and rows are compared with the prefix and ids left out.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import EMBEDDED, workflow_yaml
from tests.e2e.test_sync import BROKEN, sync, wait_job

pytestmark = pytest.mark.e2e

# per copy: 400 packs in all, 200 of them synced in bulk (half that in the embedded mode,
# where one SQLite writer at a time makes each round several times slower)
PACKS = 100 if EMBEDDED else 200
ACTION = "runner_type: shell\nentry_point: run.sh\n"


@pytest.fixture
def api(worker, client, auth):
    return client, auth


def _write(base: Path, prefix: str, i: int) -> None:
    """Pack i: its own action called, the next pack's action called (a call between packs),
    an unknown action called, a broken file (every 7th), the linked layout (every 11th), a
    file that is not UTF-8 and two files for one ref (every 13th)."""
    root = base / f"{prefix}_{i}"
    (root / "workflows").mkdir(parents=True)
    (root / "actions").mkdir()
    (root / "actions" / "echo.yaml").write_text(ACTION)
    wf = root / "workflows"
    (wf / "w0.yaml").write_text(workflow_yaml(f"{prefix}_{i}.echo"))
    (wf / "w1.yaml").write_text(workflow_yaml(f"{prefix}_{(i + 1) % PACKS}.echo", desc="calls the next pack"))
    (wf / "w2.yaml").write_text(BROKEN if i % 7 == 0 else workflow_yaml("nowhere.action", desc="calls nothing"))
    if i % 11 == 0:
        (root / "actions" / "workflows").mkdir()
        (root / "actions" / "workflows" / "linked.yaml").write_text(workflow_yaml(f"{prefix}_{i}.echo"))
    if i % 13 == 0:
        (wf / "refused.yaml").write_bytes(b"\xff\xfe not utf-8")
        (wf / "w0.yml").write_text(workflow_yaml(f"{prefix}_{i}.echo"))  # a second file for one ref


def _change(base: Path, prefix: str, i: int, round_: int) -> None:
    root = base / f"{prefix}_{i}"
    wf = root / "workflows"
    k = (i + round_) % 6
    if k == 1 and wf.is_dir():
        (wf / "w0.yaml").write_text(workflow_yaml(f"{prefix}_{i}.echo", desc=f"edited in round {round_}"))
    elif k == 2 and (wf / "w1.yaml").exists():
        (wf / "w1.yaml").unlink()
    elif k == 3 and wf.is_dir():
        (wf / f"new{round_}.yaml").write_text(BROKEN)
    elif k == 4 and i % 4 == 0:
        (root / "actions" / "echo.yaml").unlink(missing_ok=True)  # the previous pack's call stops resolving
    elif k == 5 and i % 5 == 0 and wf.is_dir():
        shutil.rmtree(wf)  # every workflow of the pack removed
    if round_ == 2 and i == 3:
        shutil.rmtree(root)  # the whole pack directory: refused, nothing removed


def _normal(value, prefix: str):
    """The value with the copy's prefix replaced and ids and job ids left out."""
    if isinstance(value, dict):
        skip = ("job_id", "workflow_def_id", "pack_dir")
        return {_normal(k, prefix): _normal(v, prefix) for k, v in value.items() if k not in skip}
    if isinstance(value, list):
        return [_normal(v, prefix) for v in value]
    if isinstance(value, str):
        return value.replace(f"{prefix}_", "P_")
    return value


def _rows(prefix: str) -> dict:
    from attune.db.engine import get_engine

    p = {"p": f"{prefix}\\_%"}
    queries = {
        "workflows": "SELECT ref, source_file, CAST(definition AS TEXT), CAST(warnings AS TEXT), revision "
        "FROM workflow_definitions WHERE ref LIKE :p ESCAPE '\\' ORDER BY ref",
        "files": "SELECT f.source_file, f.ref, f.status, CAST(f.deps AS TEXT), CAST(f.unresolved AS TEXT), "
        "CAST(f.diagnostics AS TEXT) FROM pack_files f WHERE f.ref LIKE :p ESCAPE '\\' ORDER BY f.ref, f.source_file",
        "actions": "SELECT ref, source_file FROM actions WHERE ref LIKE :p ESCAPE '\\' ORDER BY ref",
        "revisions": "SELECT ref, number, change, CAST(definition AS TEXT) FROM workflow_revisions "
        "WHERE ref LIKE :p ESCAPE '\\' ORDER BY ref, number",
    }
    with get_engine().connect() as conn:
        return {
            name: _normal([list(r) for r in conn.execute(text(sql), p).all()], prefix) for name, sql in queries.items()
        }


def _bulk(client, auth, refs: list[str]) -> dict[str, dict]:
    r = client.post("/api/v1/packs/sync", json={"packs": refs}, headers=auth)
    assert r.status_code == 202, r.text
    batch = r.json()["data"]["batch_id"]
    deadline = time.monotonic() + 240
    while True:
        summary = client.get(f"/api/v1/jobs/batches/{batch}", headers=auth).json()["data"]
        if summary["finished"]:
            break
        assert time.monotonic() < deadline, summary
        time.sleep(0.1)
    assert summary["jobs"]["succeeded"] == len(refs), summary
    assert summary["files_done"] == summary["files_total"]  # progress of the whole batch
    out = {}
    for job_id in summary["job_ids"]:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        assert job["trigger"] == "bulk" and job["status"] == "succeeded"
        assert job["result"]["job_id"] == job_id
        out[job["pack_ref"]] = job["result"]
    return out


def _one_by_one(client, auth, refs: list[str]) -> dict[str, dict]:
    out = {}
    for ref in refs:
        r = sync(client, auth, ref)
        assert r.status_code == 200, r.text
        out[ref] = r.json()["data"]
    return out


def test_a_bulk_sync_of_a_tree_equals_each_pack_synced_alone(api, packs_dir):
    client, auth = api
    created = []
    for prefix in ("ta", "tb"):
        for i in range(PACKS):
            _write(packs_dir, prefix, i)
            r = client.post("/api/v1/packs", json={"ref": f"{prefix}_{i}", "label": "t", "version": "1"}, headers=auth)
            assert r.status_code == 201, r.text
            created.append(r.json()["job_id"])
    for job_id in created:  # the auto-syncs: none still running when the rounds start
        wait_job(client, auth, job_id, timeout=240)
    # each auto-sync saw the packs created before it: one sync of every pack brings both
    # copies to the same state (calls between packs resolved) before they are compared
    _bulk(client, auth, [f"ta_{i}" for i in range(PACKS)])
    _one_by_one(client, auth, [f"tb_{i}" for i in range(PACKS)])
    a_refs = [f"ta_{i}" for i in range(PACKS)]
    b_refs = [f"tb_{i}" for i in range(PACKS)]
    for round_ in range(4):  # 0: as created; 1, 2: changed; 3: nothing changed (replayed)
        if round_ in (1, 2):
            for prefix in ("ta", "tb"):
                for i in range(PACKS):
                    _change(packs_dir, prefix, i, round_)
        bulk = _bulk(client, auth, a_refs)
        alone = _one_by_one(client, auth, b_refs)
        for i in range(PACKS):
            assert _normal(bulk[f"ta_{i}"], "ta") == _normal(alone[f"tb_{i}"], "tb"), (round_, i)
        assert _rows("ta") == _rows("tb"), round_
    # the last round changed nothing: what each pack reports comes from its stored state,
    # except for the packs that files read at every sync keep from settling
    settled = [
        f"ta_{i}"
        for i in range(PACKS)
        if i % 11 and i != 3 and not (packs_dir / f"ta_{i}" / "workflows" / "w0.yml").exists()
    ]
    assert all(bulk[ref]["unchanged_count"] == bulk[ref]["loaded_count"] for ref in settled)
    assert not any(w["changed"] or w["created"] for ref in settled for w in bulk[ref]["workflows"])
    from attune.db.engine import get_engine

    with get_engine().connect() as conn:
        stored = conn.execute(
            text("SELECT p.ref FROM pack_sync_state s JOIN packs p ON p.id = s.pack_id WHERE p.ref LIKE 'ta%'")
        ).scalars()
        # ta_3's directory is gone: its syncs are refused and change nothing, its state included
        assert sorted(stored) == sorted([*settled, "ta_3"])


def _edit_keeping_size_and_times(path: Path, old: str, new: str) -> None:
    """An edit in place of the same size whose modification time is put back, as
    ``touch -r`` or ``rsync --times`` do: the inode, size and modification time the last sync
    saw; only the kernel's change time moved."""
    assert len(old) == len(new)
    before = path.stat()
    time.sleep(0.01)  # past the coarse clock's tick: the change time moves
    with path.open("r+") as f:
        text_ = f.read()
        f.seek(0)
        f.write(text_.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def test_an_edit_keeping_size_and_modification_time_is_read_by_bulk_and_single_syncs(api, packs):
    """The file cache knew a file by its inode, size and modification time: such an edit was
    reported unchanged by every sync, single or bulk, until ``?full=true`` (found from outside:
    a task's action renamed in place, same length, mtime restored)."""
    client, auth = api
    refs = ["same_a", "same_b"]
    created = []
    for ref in refs:
        packs.make(ref, {"w.yaml": workflow_yaml(f"{ref}.echo", desc="before"), "v.yaml": workflow_yaml(f"{ref}.echo")})
        r = client.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1"}, headers=auth)
        created.append(r.json()["job_id"])
    for job_id in created:
        wait_job(client, auth, job_id)
    _bulk(client, auth, refs)
    for ref in refs:
        _edit_keeping_size_and_times(packs.base / ref / "workflows" / "w.yaml", "before", "after!")
    single = _one_by_one(client, auth, ["same_a"])["same_a"]
    bulk = _bulk(client, auth, ["same_b"])["same_b"]
    for ref, result in (("same_a", single), ("same_b", bulk)):
        changed = {w["ref_name"]: w["changed"] for w in result["workflows"]}
        assert changed == {f"{ref}.w": True, f"{ref}.v": False}, result
        assert result["unchanged_count"] == 1
        wf = client.get(f"/api/v1/workflows/{ref}.w", headers=auth).json()["data"]
        assert wf["description"] == "after!"
