"""Soak: a pack directory of 100,000 tiny files through the HTTP API (`make soak`).

Every valid file is registered, every broken one is a diagnostic in the result, the API
answers other requests meanwhile, and nothing hangs."""

from __future__ import annotations

import statistics
import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.soak, pytest.mark.timeout(1800)]

N = 100_000
TINY = "version: '1.0'\ntasks:\n  - name: a\n    action: many.echo\n"
BROKEN = ["", "[", "x: 1\n", "version: '1.0'\ntasks: 3\n", "\x00\x01"]


def _wait(client, auth, job_id: str, timeout: float, probe=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        if probe is not None:
            probe()
        assert time.monotonic() < deadline, job
        time.sleep(0.5)


def test_hundred_thousand_tiny_files(worker, client, auth, packs, monkeypatch):
    from attune.config import get_settings

    root = packs.make("many", {})
    broken = 0
    workflows = root / "workflows"
    for i in range(N):
        if i % 20 == 0:
            text = BROKEN[(i // 20) % len(BROKEN)]
            broken += 1
        else:
            text = TINY
        (workflows / f"w{i:06d}.yaml").write_text(text)
    monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 0.01)
    r = client.post("/api/v1/packs", json={"ref": "many", "label": "m", "version": "1"}, headers=auth)
    assert r.status_code == 201, r.text
    latencies: list[float] = []

    def probe() -> None:  # the API keeps answering while the workers are busy
        start = time.perf_counter()
        assert client.get("/api/v1/packs/many", headers=auth).status_code == 200
        latencies.append(time.perf_counter() - start)

    job = _wait(client, auth, r.json()["job_id"], timeout=1500, probe=probe)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["loaded_count"] == N  # every file read: valid ones registered, the rest in errors
    assert result["registered_count"] == N - broken
    assert len(result["errors"]) == broken
    assert len(result["error_diagnostics"]) == broken
    r = client.get("/api/v1/workflows?pack=many&limit=1", headers=auth)
    assert r.json()["pagination"]["total"] == N - broken
    print(f"sync of {N} tiny files: {job['duration_seconds']:.1f} s; "
          f"API median while busy {statistics.median(latencies) * 1000:.1f} ms")  # fmt: skip

    # unchanged re-sync and validate of the same directory
    r = client.post("/api/v1/packs/many/workflows/sync", headers=auth)
    job = _wait(client, auth, r.json()["data"]["job_id"], timeout=600)
    assert job["status"] == "succeeded" and job["result"]["unchanged_count"] == N  # none read again
    r = client.post("/api/v1/packs/many/workflows/validate", headers=auth)
    job = _wait(client, auth, r.json()["data"]["job_id"], timeout=900)
    assert job["status"] == "succeeded", job
    assert job["result"]["validated_count"] == N
    assert job["result"]["error_count"] == broken
