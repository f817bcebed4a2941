"""Issue 17, item 7: workers on hosts that share nothing but Postgres and Redis. Two worker
processes, each with its own empty packs directory and its own version cache, sync an
uploaded 2,000-workflow pack (bench/genpacks.py) in chunks that both take; the outcome
(plan, counts) and the rows equal those of the same pack synced from a directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import ROOT, ping_queue, start_worker, stop_processes

pytestmark = [pytest.mark.e2e, pytest.mark.server_only]

REF = "scale_0"
WORKFLOWS = 2000
CHUNK_SIZE = 100  # about twenty chunks: both workers take some


@pytest.fixture
def hosts(configured, monkeypatch, tmp_path):
    """Two workers on a queue of their own, as on two hosts: each its own (empty) packs
    directory and its own cache; the API (this process) enqueues on their queue."""
    from attune.broker import send as queue
    from attune.config import get_settings

    name = f"attune-hosts-{uuid.uuid4().hex[:6]}"
    dirs = []
    procs = []
    for i in range(2):
        host = tmp_path / f"host{i}"
        (host / "packs").mkdir(parents=True)
        (host / "cache").mkdir()
        env = {**os.environ, **configured, "ATTUNE__CELERY__TASK_QUEUE": name,
               "ATTUNE__PACKS_BASE_DIR": str(host / "packs"), "ATTUNE__VERSIONS__CACHE_DIR": str(host / "cache"),
               "ATTUNE__SYNC__CHUNK_SIZE": str(CHUNK_SIZE)}  # fmt: skip
        procs.append(start_worker(env, f"host{i}-{name}@%h", host / "worker.log"))
        dirs.append(host)
    monkeypatch.setattr(get_settings().celery, "task_queue", name)
    monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 0.01)  # the answer: 202 and the job
    queue.reset_producer()
    ping_queue(configured["ATTUNE__CELERY__BROKER_URL"], name, times=4)
    yield dirs
    stop_processes(procs)
    queue.reset_producer()


def wait(client, auth, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def rows() -> list[tuple]:
    """The pack's registry rows. The files' stat keys are left out: a pushed version's are
    those of each worker's copy, a directory's those of its files."""
    from attune.db.engine import get_engine

    with get_engine().connect() as c:
        workflows = c.execute(
            text(
                "SELECT ref, name, label, description, version, param_schema, out_schema, definition, tags, warnings, "
                "source_file, content_hash FROM workflow_definitions WHERE ref LIKE :p ORDER BY ref"
            ),
            {"p": f"{REF}.%"},
        )
        files = c.execute(
            text(
                "SELECT source_file, ref, content_hash, status, deps, unresolved, diagnostics FROM pack_files "
                "WHERE ref LIKE :p ORDER BY source_file"
            ),
            {"p": f"{REF}.%"},
        )
        actions = c.execute(text(
            "SELECT ref, label, description, runner_type, entry_point, parameters, source_file, content_hash FROM actions "
            "WHERE ref LIKE :p ORDER BY ref"), {"p": f"{REF}.%"})  # fmt: skip
        return [tuple(r) for r in workflows] + [tuple(r) for r in files] + [tuple(r) for r in actions]


def comparable_plan(plan: dict) -> dict:
    """A plan without its job and revision numbers: a workflow's history outlives its pack
    (created by the push: revision 1; removed with the pack: 2; created from disk: 3)."""
    out = {k: v for k, v in plan.items() if k != "job_id"}
    out["workflows"] = [{k: v for k, v in w.items() if k != "revision"} for w in plan["workflows"]]
    return out


def test_an_uploaded_pack_syncs_across_two_hosts_as_from_disk(hosts, client, auth, packs, monkeypatch, tmp_path):
    from attune_cli.client.push import build_archive

    gen = tmp_path / "gen"
    subprocess.run([sys.executable, str(ROOT / "bench" / "genpacks.py"), str(gen), "--workflows", str(WORKFLOWS),
                    "--actions", "20", "--invalid", "0.02", "--prefix", "scale"], check=True, capture_output=True)  # fmt: skip
    archive = tmp_path / "scale.tar.gz"
    build_archive(gen / REF, archive)

    r = client.post(
        f"/api/v1/packs/{REF}/versions", content=archive.read_bytes(), headers=auth, params={"allow_errors": "true"}
    )  # fmt: skip  (genpacks breaks 2% on purpose)
    assert r.status_code == 202, r.text
    job = wait(client, auth, r.json()["data"]["job_id"])
    assert job["status"] == "succeeded", job
    assert job["chunks_total"] >= 2 * 2
    pushed = job["result"]
    assert pushed["activated"] is True and pushed["outcome"] == "activated"
    assert pushed["plan"]["loaded_count"] == WORKFLOWS
    assert pushed["plan"]["counts"]["error"] == len(pushed["plan"]["errors"]) > 0
    assert pushed["synced"]["registered_count"] == WORKFLOWS - pushed["plan"]["counts"]["error"]
    pushed_rows = rows()
    assert (
        sum(1 for row in pushed_rows if len(row) == 12 and row[0].startswith(f"{REF}."))
        == pushed["synced"]["registered_count"]
    )

    # both hosts took chunks: each made its own copy of the version, and nothing else
    sha = pushed["sha256"]
    for host in hosts:
        assert sorted(p.name for p in (host / "cache").iterdir()) == [sha, f"{sha}.used"], host
        assert (host / "cache" / sha / "workflows").is_dir()
        assert list((host / "packs").iterdir()) == []
    pack = client.get(f"/api/v1/packs/{REF}", headers=auth).json()["data"]
    assert pack["source"] == "version" and pack["active_version_id"] == pushed["version_id"]

    # the same pack synced from a directory (whole, in this process): the same plan, counts and rows
    from attune.config import get_settings
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.jobs.pipeline import run as run_job
    from attune.packs import service as packs_service
    from attune.packs.schemas import PackCreate
    from attune.sync.schemas import SyncResult, summarise

    assert client.delete(f"/api/v1/packs/{REF}", headers=auth).status_code in (200, 204)
    assert rows() == []
    shutil.copytree(gen / REF, Path(packs.base) / REF)
    monkeypatch.setattr(get_settings().sync, "chunk_size", 1_000_000)
    results = {}
    for kind in (JobKind.PLAN, JobKind.SYNC):
        with session_scope() as s:
            pack_row = packs_service.get_pack(s, REF, keep=True) if kind == JobKind.SYNC else None
            if pack_row is None:
                pack_row = packs_service.create_pack(s, PackCreate(ref=REF, label="scale", version="1"))
            job_id = jobs.create_job(s, pack_row, kind, JobTrigger.MANUAL).id
        assert run_job(job_id)["status"] == "succeeded"
        with session_scope() as s:
            results[kind] = jobs.get_job(s, job_id).result
    assert comparable_plan(pushed["plan"]) == comparable_plan(results[JobKind.PLAN])
    created = [w for w in pushed["plan"]["workflows"] if w["change"] == "create"]
    assert len(created) == pushed["synced"]["registered_count"]
    assert {w["revision"] for w in created} == {1}
    assert pushed["synced"] == summarise(SyncResult.model_validate(results[JobKind.SYNC]))
    assert rows() == pushed_rows
