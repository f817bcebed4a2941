"""A worker process killed with SIGKILL in the middle of a large sync: the task goes back
to the queue (late acknowledgement, reject on worker lost), runs again, and the pack ends
as a clean sync leaves it; the job record counts the attempts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import ping_queue, start_worker, stop_processes, workflow_yaml

pytestmark = [pytest.mark.e2e, pytest.mark.server_only]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


@pytest.fixture
def private_workers(configured, monkeypatch, tmp_path):
    """Two worker processes on a queue of their own; packs sync in one task here."""
    from attune.broker import send as queue
    from attune.config import get_settings

    name = f"attune-kill-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, **configured, "ATTUNE__CELERY__TASK_QUEUE": name, "ATTUNE__SYNC__CHUNK_SIZE": "100000"}
    procs = [start_worker(env, f"kill{i}-{name}@%h", tmp_path / f"w{i}.log") for i in range(2)]
    monkeypatch.setattr(get_settings().celery, "task_queue", name)
    queue.reset_producer()
    ping_queue(configured["ATTUNE__CELERY__BROKER_URL"], name, times=4)
    yield procs
    stop_processes(procs)
    queue.reset_producer()


def _rows() -> list[tuple]:
    from attune.db.engine import get_engine

    with get_engine().connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT ref, definition, content_hash FROM workflow_definitions WHERE ref LIKE 'killed.%' ORDER BY ref"
                )
            )
        ]


def test_sigkill_mid_sync(private_workers, client, auth, packs, monkeypatch):
    from attune.config import get_settings

    n = 1500
    packs.make("killed", {f"w{i:04d}.yaml": workflow_yaml("killed.echo", desc=f"wf {i}") for i in range(n)})
    # create the pack while its files are parked, so that the sync below does all the work
    parked = packs.base / "killed_parked"
    (packs.base / "killed").rename(parked)
    r = client.post("/api/v1/packs", json={"ref": "killed", "label": "k", "version": "1"}, headers=auth)
    deadline = time.monotonic() + 60
    while client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=auth).json()["data"]["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    parked.rename(packs.base / "killed")

    monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 0.01)
    r = client.post("/api/v1/packs/killed/workflows/sync", headers=auth)
    assert r.status_code == 202, r.text
    job_id = r.json()["data"]["job_id"]

    # wait until the sync is under way, then kill every pool process outright
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] == "running" and job["progress"]["done"] > 0:
            break
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, "the sync never started"
        time.sleep(0.01)
    assert _rows() == []  # nothing half-written is visible
    killed = [c for p in private_workers for c in _children(p.pid)]
    assert killed, "no pool process to kill"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)

    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, "the job was not redelivered"
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2  # the record says it ran twice
    assert job["result"]["registered_count"] == n
    after = _rows()
    assert len(after) == n
    # the same as a clean, full sync of the same files
    clean = client.post("/api/v1/packs/killed/workflows/sync?full=true", headers=auth)
    monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 60)
    assert clean.status_code in (200, 202)
    clean_id = clean.json()["data"]["job_id"]
    deadline = time.monotonic() + 120
    while client.get(f"/api/v1/jobs/{clean_id}", headers=auth).json()["data"]["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _rows() == after
