"""Request ids, JSON logs and the API's /metrics."""

from __future__ import annotations

import json
import logging
import re

from tests.conftest import workflow_yaml


def test_request_id_is_echoed_or_made(client):
    r = client.get("/health", headers={"X-Request-ID": "build-42-step-3"})
    assert r.headers["x-request-id"] == "build-42-step-3"
    made = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    # not a sane token (spaces, quotes, too long): replaced, never echoed into logs
    for bad in ('a b"c', "x" * 500):
        assert re.fullmatch(
            r"[0-9a-f]{32}", client.get("/health", headers={"X-Request-ID": bad}).headers["x-request-id"]
        )
    # errors carry one too
    assert client.get("/api/v1/packs").headers["x-request-id"]


def test_metrics_count_requests_by_route_template_and_jobs(client, auth, packs, worker):
    packs.make("metered", {"a.yaml": workflow_yaml("metered.echo")})
    assert (
        client.post("/api/v1/packs", json={"ref": "metered", "label": "m", "version": "1"}, headers=auth).status_code
        == 201
    )
    assert client.post("/api/v1/packs/metered/workflows/sync", headers=auth).status_code == 200
    client.get("/api/v1/packs/metered", headers=auth)
    client.get("/api/v1/packs/nope", headers=auth)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    # by template, not by raw path: label values stay bounded
    assert 'attune_http_requests_total{method="GET",route="/api/v1/packs/{ref}",status="200"}' in text
    assert 'attune_http_requests_total{method="GET",route="/api/v1/packs/{ref}",status="404"}' in text
    assert "/api/v1/packs/metered" not in text
    assert (
        'attune_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/packs/{ref}/workflows/sync"}'
        in text
    )
    assert re.search(r'attune_jobs\{kind="sync",status="succeeded"\} [1-9]', text)
    assert re.search(r'attune_queue_depth\{queue="[^"]+"\} \d', text)


def test_json_log_lines_carry_the_request_id(capsys):
    from attune.config import Settings
    from attune.observability import logs

    logs.configure(Settings(log_format="json"), "api")
    token = logs.request_id_var.set("rid-123")
    try:
        logging.getLogger("attune.test").warning("hello %s", "there", extra={"job_id": "j1"})
    finally:
        logs.request_id_var.reset(token)
        logs.configure(Settings(log_format="text"), "api")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "hello there" and entry["level"] == "WARNING"
    assert entry["request_id"] == "rid-123" and entry["job_id"] == "j1" and entry["component"] == "api"
    logging.getLogger("attune.test").warning("plain")
    assert "plain" in capsys.readouterr().err
