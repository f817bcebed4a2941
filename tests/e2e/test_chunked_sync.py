"""A large pack split into chunks over several worker processes gives the same
result as one task syncing it whole."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import WORKER_CHUNK_SIZE, workflow_yaml

pytestmark = pytest.mark.e2e

N = 3 * WORKER_CHUNK_SIZE + 7  # four chunks


def files() -> dict[str, str]:
    out = {}
    for i in range(N):
        name = f"w{i:04d}.yaml" if i % 10 else f"w{i:04d}.yml"
        if i % 17 == 0:
            out[name] = 'version: "1"\nnote: unknown field\ntasks:\n  - {name: a, action: core_x.nope}\n'
        elif i % 13 == 0:
            out[name] = workflow_yaml("big.echo").replace("tasks:", "extra: 1\ntasks:")  # warning only
        else:
            out[name] = workflow_yaml("big.echo", desc=f"workflow {i}", tags="even" if i % 2 == 0 else "odd")
    out["z_dup.yaml"] = workflow_yaml("big.echo")
    out["z_dup.yml"] = workflow_yaml("big.echo")
    return out


def wait(client, auth, job_id, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def snapshot() -> list[tuple]:
    from attune.db.engine import get_engine

    with get_engine().connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT ref, name, label, description, version, param_schema, out_schema, definition, tags, "
                    "warnings, source_file, content_hash FROM workflow_definitions "
                    "WHERE ref LIKE 'big.%' ORDER BY ref"
                )
            )
        ] + [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT source_file, ref, stat, content_hash, status, deps, unresolved, diagnostics "
                    "FROM pack_files WHERE ref LIKE 'big.%' ORDER BY source_file"
                )
            )
        ]


def comparable(result: dict) -> dict:
    out = {k: v for k, v in result.items() if k not in ("job_id",)}
    out["workflows"] = [{k: v for k, v in w.items() if k != "workflow_def_id"} for w in result["workflows"]]
    return out


def test_chunked_equals_single(worker, client, auth, packs, monkeypatch):
    packs.make("big", files())
    r = client.post("/api/v1/packs", json={"ref": "big", "label": "big", "version": "1"}, headers=auth)
    job = wait(client, auth, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["chunks_total"] == 4
    chunked = job["result"]
    chunked_rows = snapshot()
    assert chunked["loaded_count"] == N + 2
    assert chunked["registered_count"] == N + 1 - len(range(0, N, 17))
    assert len(chunked["errors"]) == len(range(0, N, 17)) + 1  # + the duplicate ref
    assert job["progress"] == {"done": N + 2, "total": N + 2}

    # the same pack, synced whole by one task in this process
    from attune.config import get_settings
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.jobs.pipeline import run as run_job
    from attune.packs import service as packs_service

    client.delete("/api/v1/packs/big", headers=auth)
    monkeypatch.setattr(get_settings().sync, "chunk_size", 1_000_000)
    with session_scope() as s:
        from attune.packs.schemas import PackCreate

        pack = packs_service.create_pack(s, PackCreate(ref="big", label="big", version="1"))
        single_job = jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.MANUAL)
        single_id = single_job.id
    assert run_job(single_id)["status"] == "succeeded"
    with session_scope() as s:
        single = jobs.get_job(s, single_id)
        assert single.chunks_total is None
        single_result = single.result
    assert comparable(single_result) == comparable(chunked)
    assert snapshot() == chunked_rows


def test_chunked_resync_and_removal(worker, client, auth, packs):
    root = packs.make("big", files())
    r = client.post("/api/v1/packs", json={"ref": "big", "label": "big", "version": "1"}, headers=auth)
    first = wait(client, auth, r.json()["job_id"])["result"]
    ids = {w["ref_name"]: w["workflow_def_id"] for w in first["workflows"]}
    (root / "workflows" / "w0001.yaml").write_text(workflow_yaml("big.echo", desc="changed"))
    (root / "workflows" / "w0002.yaml").unlink()
    second = client.post("/api/v1/packs/big/workflows/sync", headers=auth).json()["data"]
    assert second["removed"] == ["big.w0002"]
    # removing a file re-reads nothing else, valid or not (all but the changed file, the
    # removed one, and z_dup.yml whose duplicate ref is decided from the listing each time)
    assert second["unchanged_count"] == first["loaded_count"] - 3
    by_ref = {w["ref_name"]: w for w in second["workflows"]}
    assert by_ref["big.w0001"]["changed"] and not by_ref["big.w0001"]["created"]
    assert all(by_ref[ref]["workflow_def_id"] == i for ref, i in ids.items() if ref != "big.w0002")
    listed = client.get("/api/v1/workflows?pack=big&limit=1", headers=auth).json()
    assert listed["pagination"]["total"] == first["registered_count"] - 1


def test_redelivered_chunk_is_idempotent(worker, client, auth, packs):
    """A chunk that runs twice (a worker died after staging it) stages the same rows once."""
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.jobs.pipeline import run_chunk, run_finish
    from attune.packs import service as packs_service
    from attune.packs.schemas import PackCreate
    from attune.sync import store as staging
    from attune.sync.engine import Slice
    from attune.workflows.loader import list_workflow_files

    packs.make("big", files())
    with session_scope() as s:
        pack = packs_service.create_pack(s, PackCreate(ref="big", label="big", version="1"))
        job = jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.MANUAL)
        job.chunks_total = 2
        job_id = job.id
    from attune.config import get_settings

    names = list_workflow_files(get_settings().packs_base_dir / "big")
    assert names is not None
    half = len(names) // 2
    run_chunk(job_id, Slice(0, 0, names[:half]))
    run_chunk(job_id, Slice(0, 0, names[:half]))  # again
    with session_scope() as s:
        assert staging.staged_count(s, job_id) == half
        assert staging.chunks_done(s, job_id) == 1
    assert run_finish(job_id)["status"] == "waiting"  # not every chunk is staged yet
    run_chunk(job_id, Slice(1, half, names[half:]))
    # the last chunk also sent the finishing task: the session's worker may hold it now
    assert run_finish(job_id)["status"] in ("succeeded", "held by another worker")
    deadline = time.monotonic() + 60
    while True:
        with session_scope() as s:
            if jobs.get_job(s, job_id).status == "succeeded":
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run_finish(job_id)["status"] == "succeeded"  # a second finish changes nothing
    with session_scope() as s:
        assert staging.staged_count(s, job_id) == 0
        assert jobs.get_job(s, job_id).result["loaded_count"] == N + 2
    uuid.UUID(str(job_id))
