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


def test_every_operation_is_documented(client):
    """Each endpoint: a description, its error responses, the Bearer scheme where a token
    is needed, and an example for each request body."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("description") or op.get("summary"), where
            codes = set(op["responses"])
            assert codes & {"200", "201", "202", "204"}, where
            if path.startswith("/api/v1"):
                assert op.get("security") == [{"HTTPBearer": []}], where
                assert {"401", "422", "503"} <= codes, where
            body = op.get("requestBody")
            if body and "application/octet-stream" in body["content"]:
                assert body.get("description"), f"{where}: a binary body says what it is"
                continue
            if body:
                schema = body["content"]["application/json"]["schema"]
                refs = [s["$ref"] for s in [schema, *schema.get("anyOf", [])] if "$ref" in s]
                ref = refs[0].rsplit("/", 1)[-1]
                schema = schemas[ref]
                has_example = "examples" in schema or all("examples" in p for p in schema["properties"].values())
                assert has_example, f"{where}: no example for {ref}"
    assert client.get("/docs").status_code == 200
