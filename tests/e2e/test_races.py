"""50 concurrent syncs of one pack, racing with pack updates and a delete: no duplicate
rows, no deadlock, no 500, and the final state is that of a single clean sync."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from tests.conftest import workflow_yaml

pytestmark = pytest.mark.e2e


def _count(ref_prefix: str) -> tuple[int, int]:
    from attune.db.engine import get_engine

    with get_engine().connect() as c:
        total = c.execute(
            text("SELECT count(*) FROM workflow_definitions WHERE ref LIKE :p"), {"p": ref_prefix}
        ).scalar()
        distinct = c.execute(
            text("SELECT count(DISTINCT ref) FROM workflow_definitions WHERE ref LIKE :p"), {"p": ref_prefix}
        ).scalar()
    return total, distinct


def _fire(client, auth, calls):
    results: list = []
    lock = threading.Lock()

    def one(method, path, body):
        r = client.request(method, path, headers=auth, json=body)
        with lock:
            results.append((method, path, r.status_code, r.text[:300]))

    threads = [threading.Thread(target=one, args=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def test_fifty_concurrent_syncs_with_updates(worker, client, auth, packs):
    packs.make("racy", {f"w{i:03d}.yaml": workflow_yaml("racy.echo", desc=f"w {i}") for i in range(40)})
    client.post("/api/v1/packs", json={"ref": "racy", "label": "r", "version": "1"}, headers=auth)
    calls = [("POST", "/api/v1/packs/racy/workflows/sync", None) for _ in range(50)]
    calls += [("PUT", "/api/v1/packs/racy", {"version": f"1.{i}"}) for i in range(5)]
    results = _fire(client, auth, calls)
    assert len(results) == 55
    bad = [r for r in results if r[2] >= 500]
    assert not bad, bad
    assert all(r[2] in (200, 202) for r in results if r[0] == "POST"), results
    total, distinct = _count("racy.%")
    assert total == distinct == 40
    final = client.post("/api/v1/packs/racy/workflows/sync", headers=auth).json()["data"]
    assert final["registered_count"] == 40 and final["errors"] == []


def test_syncs_racing_with_delete(worker, client, auth, packs):
    packs.make("doomed", {f"w{i:03d}.yaml": workflow_yaml("doomed.echo") for i in range(40)})
    client.post("/api/v1/packs", json={"ref": "doomed", "label": "d", "version": "1"}, headers=auth)
    calls = [("POST", "/api/v1/packs/doomed/workflows/sync", None) for _ in range(20)]
    calls.insert(10, ("DELETE", "/api/v1/packs/doomed", None))
    results = _fire(client, auth, calls)
    bad = [r for r in results if r[2] >= 500]
    assert not bad, bad
    for method, _, status, body in results:
        if method == "POST":
            assert status in (200, 202, 404), body
    time.sleep(0.5)
    assert _count("doomed.%") == (0, 0)  # deleted with its pack, nothing left behind
    assert client.get("/api/v1/packs/doomed", headers=auth).status_code == 404
