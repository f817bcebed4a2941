"""The broker stopped for real while the API is up: sync/validate answer 503 naming it,
pack reads keep working, and everything recovers when it returns, without a restart."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.server_only


def _start_redis(port: int, workdir) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def private_broker(db, monkeypatch, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server to start a broker of its own")
    from attune.broker import notify
    from attune.broker import send as queue
    from attune.config import get_settings

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    proc = _start_redis(port, tmp_path)
    monkeypatch.setattr(get_settings().celery, "broker_url", url)
    monkeypatch.setattr(get_settings().celery, "result_backend", url)
    queue.reset_producer()
    notify._client.cache_clear()
    state = {"proc": proc}

    def stop() -> None:
        state["proc"].terminate()
        state["proc"].wait(timeout=10)

    def start() -> None:
        state["proc"] = _start_redis(port, tmp_path)

    yield stop, start
    state["proc"].kill()
    queue.reset_producer()
    notify._client.cache_clear()


def test_broker_down_then_back(private_broker, auth, app):
    from fastapi.testclient import TestClient

    stop, start = private_broker
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/api/v1/packs", json={"ref": "brk", "label": "b", "version": "1"}, headers=auth)
        assert r.status_code == 201  # queued while the broker is up

        stop()
        for action in ("sync", "validate"):
            r = client.post(f"/api/v1/packs/brk/workflows/{action}", headers=auth)
            assert r.status_code == 503, r.text
            assert r.json()["error"].startswith("Broker unavailable")
            assert "job_id" in r.json()
        # reads need no broker
        assert client.get("/api/v1/packs/brk", headers=auth).status_code == 200
        assert client.get("/api/v1/packs", headers=auth).status_code == 200
        # a pack update still succeeds; its auto-sync is reported as not queued
        r = client.put("/api/v1/packs/brk", json={"version": "2"}, headers=auth)
        assert r.status_code == 200
        assert "could not be queued" in r.json()["message"]
        job = client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=auth).json()["data"]
        assert job["status"] == "failed" and job["error"].startswith("Broker unavailable")
        ready = client.get("/ready")
        assert ready.status_code == 503 and "broker" in ready.json()["error"]

        start()
        deadline = time.monotonic() + 20
        while True:  # recovers by itself: the next request gets through
            r = client.put("/api/v1/packs/brk", json={"version": "3"}, headers=auth)
            if "auto-sync started" in r.json().get("message", "") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "auto-sync started" in r.json()["message"]
        assert client.get("/ready").status_code == 200
