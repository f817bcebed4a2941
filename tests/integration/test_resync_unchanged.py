"""A re-sync that finds every file unchanged stages nothing and reads the outcome from the
file cache: its result is the one the staged way gives, file for file."""

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
    real = staging.cached_report_rows
    monkeypatch.setattr(staging, "cached_report_rows", lambda *a: calls.append(1) or real(*a))
    fast = _sync("fast")
    assert calls == [1]  # the cache was read, nothing staged
    monkeypatch.setattr(service, "FAST_UNCHANGED", False)
    staged = _sync("fast")
    assert calls == [1]
    assert fast == staged
    assert fast["unchanged_count"] == 14 and fast["removed"] == [] and len(fast["errors"]) == 2
    assert [w["ref_name"] for w in fast["workflows"]] == [w["ref_name"] for w in cold["workflows"]]


@pytest.mark.parametrize("change", ["removed", "added"])
def test_a_removed_or_added_file_takes_the_staged_way(db, packs, monkeypatch, change):
    from attune.db.engine import session_scope
    from attune.packs import service as packs_service
    from attune.packs.models import PackCreate
    from attune.sync import staging

    root = packs.make("fast2", {f"w{i}.yaml": workflow_yaml("fast2.echo") for i in range(3)})
    with session_scope() as s:
        packs_service.create_pack(s, PackCreate(ref="fast2", label="f", version="1"))
    _sync("fast2")
    calls = []
    monkeypatch.setattr(staging, "cached_report_rows", lambda *a: calls.append(1))
    if change == "removed":
        (root / "workflows" / "w0.yaml").unlink()
        result = _sync("fast2")
        assert result["removed"] == ["fast2.w0"] and result["registered_count"] == 2
    else:
        (root / "workflows" / "w9.yaml").write_text(workflow_yaml("fast2.echo"))
        result = _sync("fast2")
        assert result["registered_count"] == 4 and result["unchanged_count"] == 3
    assert calls == []
