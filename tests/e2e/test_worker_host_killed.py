"""A whole worker host dies mid-sync (SIGKILL to the worker's process group: the main
process and its pool together, as when a machine or container goes): a fresh worker
takes the job back once its lease expires, the job succeeds and the pack ends as a
clean sync leaves it. The late redelivery of the first message does nothing. A long
sync that keeps renewing its lease is never run twice.

Leases here are short (3 s, renewed every second, swept every second) so that the test
is quick; the defaults (30 s, 10 s, 10 s) bound the recovery at 40 s plus a worker's
start. Works in both modes: in the embedded one, the filesystem broker has no
redelivery at all, and the lease is the only way back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import ROOT, ping_queue, stop_processes, workflow_yaml

pytestmark = [pytest.mark.e2e]

LEASES = {
    "ATTUNE__CELERY__LEASE_SECONDS": "3",
    "ATTUNE__CELERY__LEASE_RENEW_SECONDS": "1",
    "ATTUNE__CELERY__LEASE_SWEEP_SECONDS": "1",
}


def start_host(env: dict[str, str], name: str, log_path: Path) -> subprocess.Popen:
    """A worker in a process group of its own (the 'host'), with two pool processes."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "attune_cli.main", "worker", "--concurrency", "2", "--loglevel", "INFO",
             "--hostname", name],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )  # fmt: skip


@pytest.fixture
def host_env(configured, monkeypatch):
    from attune.broker import send as queue
    from attune.config import get_settings

    name = f"attune-host-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ, **configured, **LEASES, "ATTUNE__CELERY__TASK_QUEUE": name,
        "ATTUNE__SYNC__CHUNK_SIZE": "100000", "ATTUNE__METRICS__WORKER_PORT": "0",
    }  # fmt: skip
    monkeypatch.setattr(get_settings().celery, "task_queue", name)
    queue.reset_producer()
    yield env
    queue.reset_producer()


def _wait_ready(env: dict[str, str], procs: int = 2) -> None:
    from attune.config import get_settings

    if get_settings().embedded_broker:
        time.sleep(3)  # the filesystem broker answers no remote ping: give the worker its start
        return
    ping_queue(env["ATTUNE__CELERY__BROKER_URL"], env["ATTUNE__CELERY__TASK_QUEUE"], times=procs)


def _rows(prefix: str) -> list[tuple]:
    from attune.db.engine import get_engine

    with get_engine().connect() as c:
        sql = "SELECT ref, definition, content_hash FROM workflow_definitions WHERE ref LIKE :p ORDER BY ref"
        return [tuple(r) for r in c.execute(text(sql), {"p": prefix + ".%"})]


def _job(client, auth, job_id: str) -> dict:
    return client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]


def _wait_finished(client, auth, job_id: str, seconds: float) -> tuple[dict, float]:
    start = time.monotonic()
    while True:
        job = _job(client, auth, job_id)
        if job["status"] in ("succeeded", "failed"):
            return job, time.monotonic() - start
        assert time.monotonic() - start < seconds, f"job not finished in {seconds} s: {job}"
        time.sleep(0.1)


def _create_parked(client, auth, packs, ref: str, n: int) -> None:
    """Creates the pack while its files are parked, so that the next sync does all the work."""
    packs.make(ref, {f"w{i:04d}.yaml": workflow_yaml(f"{ref}.echo", desc=f"wf {i}") for i in range(n)})
    parked = packs.base / f"{ref}_parked"
    (packs.base / ref).rename(parked)
    r = client.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1"}, headers=auth)
    assert r.status_code == 201, r.text
    _wait_finished(client, auth, r.json()["job_id"], 120)
    parked.rename(packs.base / ref)


def test_whole_worker_host_killed_mid_sync(host_env, client, auth, packs, monkeypatch, tmp_path):
    from attune.broker import send
    from attune.broker.names import TaskName
    from attune.config import get_settings

    n = 3000
    first = start_host(host_env, f"doomed-{uuid.uuid4().hex[:4]}@%h", tmp_path / "doomed.log")
    fresh = None
    try:
        _wait_ready(host_env)
        _create_parked(client, auth, packs, "hostkill", n)
        monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 0.01)
        r = client.post("/api/v1/packs/hostkill/workflows/sync", headers=auth)
        assert r.status_code == 202, r.text
        job_id = r.json()["data"]["job_id"]
        deadline = time.monotonic() + 60
        while True:  # under way, then the whole host goes
            job = _job(client, auth, job_id)
            if job["status"] == "running" and (job["progress"]["done"] > 0 or get_settings().embedded_database):
                break  # (SQLite: no progress while the sync holds the write lock)
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline, "the sync never started"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert _rows("hostkill") == []  # nothing half-written is visible

        fresh = start_host(host_env, f"fresh-{uuid.uuid4().hex[:4]}@%h", tmp_path / "fresh.log")
        job, took = _wait_finished(client, auth, job_id, 60)
        assert job["status"] == "succeeded", (job, (tmp_path / "fresh.log").read_text()[-3000:])
        assert job["attempts"] == 2
        assert job["result"]["registered_count"] == n
        after = _rows("hostkill")
        assert len(after) == n

        # the broker's late redelivery of the first message: nothing happens
        send.send(TaskName.SYNC, [job_id], task_id=f"{job_id}-late")
        time.sleep(2)
        again = _job(client, auth, job_id)
        assert (again["status"], again["attempts"], again["finished_at"]) == ("succeeded", 2, job["finished_at"])

        # the same as a clean, full sync of the same files
        monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 120)
        clean = client.post("/api/v1/packs/hostkill/workflows/sync?full=true", headers=auth)
        assert clean.status_code == 200, clean.text
        assert _rows("hostkill") == after
        print(f"recovered {took:.1f} s after the fresh worker started")
    finally:
        stop_processes([p for p in (fresh,) if p is not None])
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)


def test_long_sync_renews_its_lease_and_runs_once(host_env, client, auth, packs, monkeypatch, tmp_path):
    """A sync longer than several lease periods: renewed all along, taken by no one."""
    from attune.config import get_settings

    env = {**host_env, "ATTUNE__CELERY__LEASE_SECONDS": "1", "ATTUNE__CELERY__LEASE_RENEW_SECONDS": "0.2",
           "ATTUNE__CELERY__LEASE_SWEEP_SECONDS": "0.2"}  # fmt: skip
    log = tmp_path / "long.log"
    proc = start_host(env, f"long-{uuid.uuid4().hex[:4]}@%h", log)
    try:
        _wait_ready(env)
        _create_parked(client, auth, packs, "longsync", 24000)  # several leases long, also on the faster paths
        monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 120)
        r = client.post("/api/v1/packs/longsync/workflows/sync", headers=auth)
        assert r.status_code == 200, r.text
        job = _job(client, auth, r.json()["data"]["job_id"])
        assert job["duration_seconds"] > 1.5, "the sync was too quick to outlive its lease"
        assert job["attempts"] == 1, log.read_text()[-3000:]
        assert "sent again" not in log.read_text()
    finally:
        stop_processes([proc])


def test_whole_worker_host_killed_mid_group(host_env, client, auth, packs, monkeypatch, tmp_path):
    """A bulk sync's group task (issue 15) dies with its host while it syncs its second pack:
    the first pack's job stays succeeded; the second and the two it had not reached yet
    (still queued, their leases taken when the group started) are each sent again on their
    own when their leases expire, and succeed (the two started once); every pack ends as a
    clean sync leaves it."""
    from attune.config import get_settings
    from attune.jobs import bulk

    heavy = 3000
    refs = ["grp_small0", "grp_heavy", "grp_small1", "grp_small2"]
    first = start_host(host_env, f"doomed-{uuid.uuid4().hex[:4]}@%h", tmp_path / "doomed.log")
    fresh = None
    try:
        _wait_ready(host_env)
        for ref in refs:
            _create_parked(client, auth, packs, ref, heavy if ref == "grp_heavy" else 3)
        monkeypatch.setattr(bulk, "group_size", lambda total, most: total)  # one group of four
        r = client.post("/api/v1/packs/sync", json={"packs": refs}, headers=auth)
        assert r.status_code == 202, r.text
        ids = {j["pack_ref"]: j["id"] for j in r.json()["data"]["jobs"]}
        deadline = time.monotonic() + 60
        while True:  # the first pack synced, the heavy one under way: the whole host goes
            states = {ref: _job(client, auth, ids[ref]) for ref in refs}
            heavy_job = states["grp_heavy"]
            if states["grp_small0"]["status"] == "succeeded" and (
                heavy_job["progress"]["done"] > 0 or get_settings().embedded_database
            ):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert _rows("grp_heavy") == []
        # not reached: still queued (a group's job is marked running when its turn comes), leases held
        assert {ref: _job(client, auth, ids[ref])["status"] for ref in refs[1:]} == {
            "grp_heavy": "running", "grp_small1": "queued", "grp_small2": "queued",
        }  # fmt: skip

        fresh = start_host(host_env, f"fresh-{uuid.uuid4().hex[:4]}@%h", tmp_path / "fresh.log")
        done = {ref: _wait_finished(client, auth, ids[ref], 60)[0] for ref in refs}
        assert {ref: j["status"] for ref, j in done.items()} == dict.fromkeys(refs, "succeeded"), (
            tmp_path / "fresh.log"
        ).read_text()[-3000:]
        assert {ref: j["attempts"] for ref, j in done.items()} == {
            "grp_small0": 1, "grp_heavy": 2, "grp_small1": 1, "grp_small2": 1,
        }  # fmt: skip
        assert done["grp_heavy"]["result"]["registered_count"] == heavy
        after = {ref: _rows(ref) for ref in refs}
        monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 120)
        for ref in refs:  # the same as a clean, full sync of the same files
            clean = client.post(f"/api/v1/packs/{ref}/workflows/sync?full=true", headers=auth)
            assert clean.status_code == 200, clean.text
            assert _rows(ref) == after[ref]
    finally:
        stop_processes([p for p in (fresh,) if p is not None])
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
