from __future__ import annotations

import pytest


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_ready_when_everything_is_up(client):
    r = client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.server_only
def test_ready_names_the_broker_when_down(client, monkeypatch):
    from attune.config import get_settings

    # Nothing listens on port 1: the broker check must fail and say so.
    monkeypatch.setattr(get_settings().celery, "broker_url", "redis://127.0.0.1:1/0")
    r = client.get("/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "Not ready: broker unreachable"
    assert body["checks"]["database"] == "ok"


def test_openapi_has_bearer_scheme(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
