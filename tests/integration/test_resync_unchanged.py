"""A whole-pack re-sync stages only the files it reads and takes the unchanged ones from the
file cache: its result and the rows it leaves are the staged way's, file for file."""

from __future__ import annotations

import pytest

from tests.conftest import workflow_yaml

BROKEN = "version: '1.0'\ndescription: no tasks\n"


def _sync(ref: str) -> dict:
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs import service as packs
    from attune.sync.runner import run_job

    with session_scope() as s:
        job_id = jobs.create_job(s, packs.get_pack(s, ref), JobKind.SYNC, JobTrigger.MANUAL).id
    run_job(job_id)
    with session_scope() as s:
        job = jobs.get_job(s, job_id)
        assert job.status == "succeeded", job.error
        result = dict(job.result)
    result.pop("job_id")
    return result


def test_fast_unchanged_resync_equals_the_staged_one(db, packs, monkeypatch):
    from attune.db.engine import session_scope
    from attune.packs import service as packs_service
    from attune.packs.models import PackCreate
    from attune.sync import service, staging

    files = {f"w{i:02d}.yaml": workflow_yaml("fast.echo", desc=f"wf {i}") for i in range(12)}
    files.update({"broken.yaml": BROKEN, "calls_missing.yaml": workflow_yaml("fast.nope")})
    packs.make("fast", files)
    with session_scope() as s:
        packs_service.create_pack(s, PackCreate(ref="fast", label="f", version="1"))
    cold = _sync("fast")
    assert cold["registered_count"] == 12 and len(cold["errors"]) == 2

    calls = []
    real = staging.report_rows_read
    monkeypatch.setattr(staging, "report_rows_read", lambda *a: calls.append(1) or real(*a))
    fast = _sync("fast")
    assert calls == [1]  # the cache was read, nothing staged
    monkeypatch.setattr(service, "FAST_UNCHANGED", False)
    staged = _sync("fast")
    assert calls == [1]
    assert fast == staged
    assert fast["unchanged_count"] == 14 and fast["removed"] == [] and len(fast["errors"]) == 2
    assert [w["ref_name"] for w in fast["workflows"]] == [w["ref_name"] for w in cold["workflows"]]


def _state(pack_ref: str) -> tuple:
    from sqlalchemy import text

    from attune.db.engine import get_engine

    with get_engine().connect() as c:
        wfs = c.execute(text("SELECT ref, content_hash, source_file FROM workflow_definitions ORDER BY ref")).all()
        files = c.execute(text("SELECT source_file, ref, status FROM pack_files ORDER BY source_file")).all()
    return [tuple(r) for r in wfs], [tuple(r) for r in files]


@pytest.mark.parametrize("change", ["removed", "added", "edited", "broken", "fixed", "refused", "mixed"])
def test_changes_read_or_staged_give_the_same_result(db, packs, monkeypatch, change):
    """Each kind of change, synced the fast way and (from the same start) the staged way."""
    from attune.db.engine import session_scope
    from attune.packs import service as packs_service
    from attune.packs.models import PackCreate
    from attune.sync import service

    results = {}
    for fast in (True, False):
        monkeypatch.setattr(service, "FAST_UNCHANGED", True)
        ref = f"chg{int(fast)}"
        files = {f"w{i}.yaml": workflow_yaml(f"{ref}.echo", desc=f"wf {i}") for i in range(6)}
        files["bad.yaml"] = BROKEN
        root = packs.make(ref, files)
        with session_scope() as s:
            packs_service.create_pack(s, PackCreate(ref=ref, label="c", version="1"))
        _sync(ref)
        wf = root / "workflows"
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
        monkeypatch.setattr(service, "FAST_UNCHANGED", fast)
        result = _sync(ref)
        result = {k: v for k, v in result.items() if k != "pack_ref"}
        result = {**result, "workflows": [{**w, "ref_name": w["ref_name"].split(".", 1)[1],
                                           "workflow_def_id": None} for w in result["workflows"]]}  # fmt: skip
        text = repr(result).replace(ref + ".", "P.")
        wfs, cached = _state(ref)
        mine = ([(r.split(".", 1)[1], f) for r, _, f in wfs if r.startswith(ref + ".")],
                [(f, r.split(".", 1)[1], st) for f, r, st in cached if r.startswith(ref + ".")])  # fmt: skip
        results[fast] = (text, mine)
    assert results[True] == results[False]
    assert "unchanged_count" in results[True][0]
