"""Sync and validate end to end: HTTP -> API -> Redis -> a real worker -> Postgres."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.conftest import workflow_yaml

pytestmark = pytest.mark.e2e

BROKEN = 'version: "1.0"\ndescription: no tasks\n'


@pytest.fixture
def api(worker, client, auth):
    """The in-process API with a worker consuming its jobs; returns (client, headers)."""
    return client, auth


def create_pack(client, auth, ref: str) -> dict:
    """Creates the pack and waits for its auto-sync: a test's own syncs then never race it
    (an auto-sync finishing after a file is removed would report the removal itself)."""
    r = client.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1.0.0"}, headers=auth)
    assert r.status_code == 201, r.text
    if r.json().get("job_id"):
        wait_job(client, auth, r.json()["job_id"])
    return r.json()


def wait_job(client, auth, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def sync(client, auth, ref: str):
    return client.post(f"/api/v1/packs/{ref}/workflows/sync", headers=auth)


def test_sync_registers_valid_and_reports_invalid(api, packs):
    client, auth = api
    packs.make(
        "my_pack",
        {
            "deploy_app.yaml": workflow_yaml("my_pack.echo"),
            "rollback.yaml": workflow_yaml("my_pack.echo", tags="ops"),
            "health_check.yml": workflow_yaml("my_pack.echo"),
            "broken.yaml": BROKEN,
            "notes.txt": "not a workflow",
        },
    )
    wait_job(client, auth, create_pack(client, auth, "my_pack")["job_id"])
    r = sync(client, auth, "my_pack")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Pack workflows synced successfully"
    data = body["data"]
    assert data["pack_ref"] == "my_pack"
    assert data["loaded_count"] == 4
    assert data["registered_count"] == 3
    assert data["errors"] == ["Validation failed for my_pack.broken: Missing required field: tasks"]
    assert data["error_diagnostics"]["my_pack.broken"][0]["code"] == "missing-field"
    refs = sorted(w["ref_name"] for w in data["workflows"])
    assert refs == ["my_pack.deploy_app", "my_pack.health_check", "my_pack.rollback"]
    for w in data["workflows"]:
        assert set(w) >= {"ref_name", "created", "workflow_def_id", "warnings"}
        assert isinstance(w["workflow_def_id"], int)
        assert w["warnings"] == []
    uuid.UUID(data["job_id"])

    # the workflows API serves what was registered
    wf = client.get("/api/v1/workflows/my_pack.deploy_app", headers=auth).json()["data"]
    assert wf["source_file"] == "workflows/deploy_app.yaml"
    assert len(wf["content_hash"]) == 64
    assert wf["definition"]["tasks"][0]["next"][0]["do"] == ["finish"]
    assert wf["pack_ref"] == "my_pack"
    assert client.get("/api/v1/workflows/my_pack.broken", headers=auth).status_code == 404


def test_resync_updates_in_place(api, packs):
    client, auth = api
    root = packs.make("resync", {"a.yaml": workflow_yaml("resync.echo"), "b.yaml": workflow_yaml("resync.echo")})
    create_pack(client, auth, "resync")
    first = sync(client, auth, "resync").json()["data"]
    ids = {w["ref_name"]: w["workflow_def_id"] for w in first["workflows"]}

    second = sync(client, auth, "resync").json()["data"]
    assert second["registered_count"] == 2
    assert all(w["created"] is False for w in second["workflows"])
    assert {w["ref_name"]: w["workflow_def_id"] for w in second["workflows"]} == ids
    assert second["unchanged_count"] == 2  # not read again
    full = client.post("/api/v1/packs/resync/workflows/sync?full=true", headers=auth).json()["data"]
    assert full["unchanged_count"] == 0
    assert {w["ref_name"]: w["workflow_def_id"] for w in full["workflows"]} == ids

    (root / "workflows" / "a.yaml").write_text(workflow_yaml("resync.echo", desc="changed"))
    third = sync(client, auth, "resync").json()["data"]
    changed = {w["ref_name"]: w for w in third["workflows"]}
    assert changed["resync.a"]["created"] is False
    assert changed["resync.a"]["changed"] is True
    assert changed["resync.a"]["workflow_def_id"] == ids["resync.a"]
    assert third["unchanged_count"] == 1
    wf = client.get("/api/v1/workflows/resync.a", headers=auth).json()["data"]
    assert wf["description"] == "changed"
    listed = client.get("/api/v1/workflows?pack=resync", headers=auth).json()
    assert listed["pagination"]["total"] == 2  # never duplicated


def test_removed_file_is_deleted_and_reported(api, packs):
    client, auth = api
    root = packs.make("shrink", {"keep.yaml": workflow_yaml("shrink.echo"), "gone.yaml": workflow_yaml("shrink.echo")})
    create_pack(client, auth, "shrink")
    assert sync(client, auth, "shrink").json()["data"]["registered_count"] == 2
    (root / "workflows" / "gone.yaml").unlink()
    data = sync(client, auth, "shrink").json()["data"]
    assert data["removed"] == ["shrink.gone"]
    assert data["loaded_count"] == 1
    assert client.get("/api/v1/workflows/shrink.gone", headers=auth).status_code == 404


def test_missing_directory(api):
    client, auth = api
    create_pack(client, auth, "no_dir_pack")
    r = sync(client, auth, "no_dir_pack")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["loaded_count"] == 0
    assert data["registered_count"] == 0
    assert data["errors"] == ["Failed to load workflows: Directory not found"]
    assert r.json()["message"] == "Pack workflows synced successfully"
    # beside the seed's fields: where the server looked, and the fields every sync answer has
    assert data["pack_dir"].endswith("/no_dir_pack")
    assert data["error_diagnostics"] == {} and data["unchanged_count"] == 0 and data["workflows"] == []


def test_unknown_pack(api):
    client, auth = api
    for action in ("sync", "validate"):
        r = client.post(f"/api/v1/packs/nonexistent_pack/workflows/{action}", headers=auth)
        assert r.status_code == 404
        assert r.json() == {"error": "Pack 'nonexistent_pack' not found"}


def test_invalid_ref_never_reaches_the_file_system(api):
    client, auth = api
    for ref in ("..", "Upper", "a.b", "%2e%2e"):
        r = client.post(f"/api/v1/packs/{ref}/workflows/sync", headers=auth)
        assert r.status_code in (404, 405, 422), (ref, r.status_code)
        assert "error" in r.json()


def test_validate_reports_every_error_and_registers_nothing(api, packs):
    client, auth = api
    packs.make(
        "val_pack",
        {
            "good.yaml": workflow_yaml("val_pack.echo"),
            "broken_workflow.yaml": ("tasks:\n  - name: step1\n    action: invalid.action\n"),
        },
    )
    create_pack(client, auth, "val_pack")
    client.delete("/api/v1/packs/val_pack", headers=auth)  # drop what auto-sync registered
    create_pack(client, auth, "val_pack")
    r = client.post("/api/v1/packs/val_pack/workflows/validate", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Pack workflows validated"
    data = body["data"]
    assert data["pack_ref"] == "val_pack"
    assert data["validated_count"] == 2
    assert data["error_count"] == 1
    assert data["errors"] == {
        "val_pack.broken_workflow": [
            "Missing required field: version",
            "Task 'step1' references undefined action 'invalid.action'",
        ]
    }
    lines = [d["line"] for d in data["diagnostics"]["val_pack.broken_workflow"]]
    assert lines == [1, 3]


def test_validate_missing_directory_counts_as_error(api):
    client, auth = api
    create_pack(client, auth, "val_missing")
    data = client.post("/api/v1/packs/val_missing/workflows/validate", headers=auth).json()["data"]
    assert data["error_count"] == 1
    assert data["errors"] == {"val_missing": ["Failed to load workflows: Directory not found"]}


def test_auto_sync_on_create_and_update(api, packs):
    client, auth = api
    root = packs.make("auto_pack", {"one.yaml": workflow_yaml("auto_pack.echo"), "bad.yaml": BROKEN})
    created = create_pack(client, auth, "auto_pack")
    assert "auto-sync started" in created["message"]
    job = wait_job(client, auth, created["job_id"])
    assert job["status"] == "succeeded"
    assert job["trigger"] == "auto"
    assert job["kind"] == "sync"
    assert job["options"] == {"skip_validation_errors": True}
    assert job["result"]["registered_count"] == 1
    assert job["result"]["errors"] == ["Validation failed for auto_pack.bad: Missing required field: tasks"]
    assert job["progress"] == {"done": 2, "total": 2}
    assert job["finished_at"] >= job["started_at"]

    (root / "workflows" / "two.yaml").write_text(workflow_yaml("auto_pack.echo"))
    updated = client.put("/api/v1/packs/auto_pack", json={"version": "1.1.0"}, headers=auth)
    assert updated.status_code == 200
    job = wait_job(client, auth, updated.json()["job_id"])
    assert job["result"]["registered_count"] == 2

    jobs = client.get("/api/v1/packs/auto_pack/jobs", headers=auth).json()
    assert jobs["pagination"]["total"] == 2
    assert [j["id"] for j in jobs["data"]] == [updated.json()["job_id"], created["job_id"]]


def test_slow_sync_answers_202_with_location(api, packs, monkeypatch):
    from attune.config import get_settings

    client, auth = api
    packs.make("big_pack", {f"w{i:04d}.yaml": workflow_yaml("big_pack.echo") for i in range(400)})
    created = create_pack(client, auth, "big_pack")
    wait_job(client, auth, created["job_id"])
    # change every file so the sync has real work to do, then wait far less than it takes
    packs.make("big_pack", {f"w{i:04d}.yaml": workflow_yaml("big_pack.echo", desc="v2") for i in range(400)})
    monkeypatch.setattr(get_settings().celery, "result_wait_seconds", 0.01)
    r = sync(client, auth, "big_pack")
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == f"/api/v1/jobs/{r.json()['data']['job_id']}"
    assert "poll" in r.json()["message"]
    job = wait_job(client, auth, r.json()["data"]["job_id"])
    assert job["status"] == "succeeded"
    assert job["result"]["registered_count"] == 400


def test_concurrent_syncs_of_one_pack(api, packs):
    client, auth = api
    packs.make("race_pack", {f"w{i}.yaml": workflow_yaml("race_pack.echo") for i in range(30)})
    wait_job(client, auth, create_pack(client, auth, "race_pack")["job_id"])
    client.delete("/api/v1/packs/race_pack", headers=auth)
    create_pack(client, auth, "race_pack")
    results: list = []

    def one() -> None:  # concurrent requests into the one running app
        results.append(client.post("/api/v1/packs/race_pack/workflows/sync", headers=auth))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results if r.status_code != 200]
    ids = [{w["ref_name"]: w["workflow_def_id"] for w in r.json()["data"]["workflows"]} for r in results]
    assert all(i == ids[0] for i in ids)  # every sync saw the same rows
    assert sum(w["created"] for r in results for w in r.json()["data"]["workflows"]) <= 30
    listed = client.get("/api/v1/workflows?pack=race_pack&limit=1000", headers=auth).json()
    assert listed["pagination"]["total"] == 30


def test_actions_of_one_pack_serve_another(api, packs):
    client, auth = api
    packs.make("lib_pack", {}, actions={"notify": "runner_type: http\nlabel: Notify\n"})
    packs.make("app_pack", {"use_lib.yaml": workflow_yaml("lib_pack.notify")}, actions={})
    create_pack(client, auth, "app_pack")
    data = client.post("/api/v1/packs/app_pack/workflows/validate", headers=auth).json()["data"]
    assert data["errors"] == {
        "app_pack.use_lib": [
            "Task 'start' references undefined action 'lib_pack.notify'",
            "Task 'finish' references undefined action 'lib_pack.notify'",
        ]
    }
    wait_job(client, auth, create_pack(client, auth, "lib_pack")["job_id"])
    data = client.post("/api/v1/packs/app_pack/workflows/validate", headers=auth).json()["data"]
    assert data["error_count"] == 0
    assert sync(client, auth, "app_pack").json()["data"]["registered_count"] == 1


def test_workflows_list_filters_and_pages(api, packs):
    client, auth = api
    packs.make(
        "list_a",
        {f"w{i}.yaml": workflow_yaml("list_a.echo", tags="alpha" if i % 2 else "beta") for i in range(5)},
    )
    packs.make("list_b", {"x.yaml": workflow_yaml("list_b.echo", tags="alpha")})
    wait_job(client, auth, create_pack(client, auth, "list_a")["job_id"])
    wait_job(client, auth, create_pack(client, auth, "list_b")["job_id"])
    everything = client.get("/api/v1/workflows", headers=auth).json()
    assert everything["pagination"]["total"] == 6
    alpha = client.get("/api/v1/workflows?tag=alpha", headers=auth).json()
    assert sorted(w["ref"] for w in alpha["data"]) == ["list_a.w1", "list_a.w3", "list_b.x"]
    a_alpha = client.get("/api/v1/workflows?pack=list_a&tag=alpha", headers=auth).json()
    assert a_alpha["pagination"]["total"] == 2
    page = client.get("/api/v1/workflows?pack=list_a&limit=2&offset=2", headers=auth).json()
    assert [w["ref"] for w in page["data"]] == ["list_a.w2", "list_a.w3"]
    assert client.get("/api/v1/workflows?pack=nope", headers=auth).status_code == 404
    assert client.get("/api/v1/workflows?pack=Bad.Ref", headers=auth).status_code == 422


def test_jobs_endpoint_errors(api):
    client, auth = api
    assert client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=auth).status_code == 404
    assert client.get("/api/v1/jobs/not-a-uuid", headers=auth).status_code == 422
    assert client.get(f"/api/v1/jobs/{uuid.uuid4()}").status_code == 401


def test_bulk_sync(api, packs):
    client, auth = api
    for ref in ("bulk_a", "bulk_b", "bulk_c"):
        packs.make(ref, {"w.yaml": workflow_yaml(f"{ref}.echo")})
        create_pack(client, auth, ref)
    r = client.post("/api/v1/packs/sync", json={"packs": ["bulk_a", "bulk_c"]}, headers=auth)
    assert r.status_code == 202, r.text
    started = r.json()["data"]["jobs"]
    batch_id = r.json()["data"]["batch_id"]
    assert [j["pack_ref"] for j in started] == ["bulk_a", "bulk_c"]
    assert all(j["trigger"] == "bulk" and j["batch_id"] == batch_id for j in started)
    for j in started:
        assert wait_job(client, auth, j["id"])["status"] == "succeeded"
    batch = client.get(f"/api/v1/jobs/batches/{batch_id}", headers=auth).json()["data"]
    assert batch["finished"] is True
    assert batch["jobs_total"] == 2
    assert batch["jobs"] == {"queued": 0, "running": 0, "succeeded": 2, "failed": 0}
    assert batch["files_done"] == batch["files_total"] == 2
    assert client.get(f"/api/v1/jobs/batches/{uuid.uuid4()}", headers=auth).status_code == 404
    everyone = client.post("/api/v1/packs/sync", headers=auth)
    assert len(everyone.json()["data"]["jobs"]) == 3
    assert client.post("/api/v1/packs/sync", json={"packs": ["nope"]}, headers=auth).status_code == 404


def test_bulk_sync_of_no_pack_is_refused(api, packs):
    """``{"packs": []}`` started a batch of no jobs (202) whose id then answered 404: a
    script waiting on it failed on a request it could not have known was empty."""
    client, auth = api
    packs.make("bulk_empty", {"w.yaml": workflow_yaml("bulk_empty.echo")})
    create_pack(client, auth, "bulk_empty")
    r = client.post("/api/v1/packs/sync", json={"packs": []}, headers=auth)
    assert r.status_code == 422, r.text
    assert "at least one pack" in r.text
    jobs_of_pack = client.get("/api/v1/packs/bulk_empty/jobs", headers=auth).json()["data"]
    assert [j["trigger"] for j in jobs_of_pack] == ["auto"]  # nothing started


def test_sync_every_pack_with_none_registered_is_an_empty_finished_batch(api):
    """A fresh install running the README's "sync every pack" then waiting on its batch:
    the batch started no job, and its id answered 404 (a batch was known by its jobs)."""
    client, auth = api
    r = client.post("/api/v1/packs/sync", headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["data"]["jobs"] == []
    assert "started no job" in r.json()["message"]
    batch_id = r.json()["data"]["batch_id"]
    got = client.get(f"/api/v1/jobs/batches/{batch_id}", headers=auth)
    assert got.status_code == 200, got.text
    assert got.json()["data"] == {
        "batch_id": batch_id,
        "jobs_total": 0,
        "jobs": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0},
        "finished": True,
        "files_done": 0,
        "files_total": 0,
        "job_ids": [],
    }
    assert client.get(f"/api/v1/jobs/batches/{uuid.uuid4()}", headers=auth).status_code == 404


def test_unchanged_invalid_files_are_not_read_again(api, packs):
    client, auth = api
    root = packs.make("cache_pack", {"good.yaml": workflow_yaml("cache_pack.echo"), "bad.yaml": BROKEN})
    create_pack(client, auth, "cache_pack")
    first = sync(client, auth, "cache_pack").json()["data"]
    assert first["unchanged_count"] == 2  # the auto-sync read both
    assert first["errors"] == ["Validation failed for cache_pack.bad: Missing required field: tasks"]
    assert first["error_diagnostics"]["cache_pack.bad"][0]["line"] == 1
    # the cached outcome is served while the file is the same...
    (root / "workflows" / "bad.yaml").write_text(BROKEN.replace("no tasks", "still no tasks"))
    second = sync(client, auth, "cache_pack").json()["data"]
    assert second["unchanged_count"] == 1
    assert second["errors"] == first["errors"]
    # ...and a fixed file registers
    (root / "workflows" / "bad.yaml").write_text(workflow_yaml("cache_pack.echo"))
    third = sync(client, auth, "cache_pack").json()["data"]
    assert third["errors"] == []
    assert third["registered_count"] == 2


def test_huge_and_binary_files_are_diagnostics_not_failures(api, packs):
    client, auth = api
    root = packs.make("hostile", {"good.yaml": workflow_yaml("hostile.echo")})
    with (root / "workflows" / "huge.yaml").open("wb") as fh:  # 50 MB
        fh.write(b"# " + b"x" * (50 * 1024 * 1024) + b"\n")
    (root / "workflows" / "binary.yaml").write_bytes(bytes(range(256)) * 64)
    (root / "workflows" / "latin1.yaml").write_bytes('version: "1"\ndescription: "caf\xe9"\n'.encode("latin-1"))
    create_pack(client, auth, "hostile")
    r = sync(client, auth, "hostile")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["registered_count"] == 1
    errors = "\n".join(data["errors"])
    assert "hostile.huge: File is 52428803 bytes, larger than the limit of 1048576 bytes" in errors
    assert "hostile.binary: File is not valid UTF-8" in errors
    assert "hostile.latin1: File is not valid UTF-8 (byte 0xe9" in errors
    v = client.post("/api/v1/packs/hostile/workflows/validate", headers=auth).json()["data"]
    assert v["error_count"] == 3


def test_request_id_follows_the_job_into_the_worker(worker, client, auth, packs):
    """The API's request id is in the worker's log lines of the job it started, and the
    worker's own /metrics counts the job."""
    import httpx

    packs.make("traced", {"a.yaml": workflow_yaml("traced.echo")})
    client.post("/api/v1/packs", json={"ref": "traced", "label": "t", "version": "1"}, headers=auth)
    rid = "trace-" + uuid.uuid4().hex[:12]
    r = client.post("/api/v1/packs/traced/workflows/sync", headers={**auth, "X-Request-ID": rid})
    assert r.status_code == 200
    job_id = r.json()["data"]["job_id"]
    lines = [line for line in worker.log_path.read_text().splitlines() if rid in line]
    assert any(job_id in line for line in lines), lines
    text = httpx.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).text
    assert 'attune_worker_jobs_total{kind="sync",outcome="succeeded"}' in text
    assert 'attune_worker_tasks_total{outcome="success",task="packs.sync_workflows"}' in text
    assert "attune_job_duration_seconds_bucket" in text


@pytest.fixture
def failing_success(api):
    """The database refuses to mark the pack 'failing''s jobs succeeded: its syncs fail at
    their very end, after the job row was created by the ORM (its result JSON null)."""
    from sqlalchemy import text

    from attune.db.engine import get_engine
    from tests.conftest import EMBEDDED

    with get_engine().begin() as conn:
        if EMBEDDED:
            conn.execute(text("CREATE TRIGGER refuse_success BEFORE UPDATE OF status ON jobs "
                              "WHEN NEW.status = 'succeeded' AND NEW.pack_ref = 'failing' "
                              "BEGIN SELECT RAISE(ABORT, 'boom-success'); END"))  # fmt: skip
        else:
            conn.execute(text("CREATE FUNCTION refuse_success() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN IF NEW.status = 'succeeded' AND NEW.pack_ref = 'failing' THEN "
                              "RAISE EXCEPTION 'boom-success'; END IF; RETURN NEW; END $$"))  # fmt: skip
            conn.execute(text("CREATE TRIGGER refuse_success BEFORE UPDATE ON jobs "
                              "FOR EACH ROW EXECUTE FUNCTION refuse_success()"))  # fmt: skip
    try:
        yield
    finally:
        with get_engine().begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_success" + ("" if EMBEDDED else " ON jobs")))
            if not EMBEDDED:
                conn.execute(text("DROP FUNCTION refuse_success()"))


def test_a_failed_sync_never_answers_200(api, packs, failing_success):
    """A sync that fails answers 500 with its error, not 200 with no data and "synced
    successfully" (the waiter took the new job's JSON null for a result; found by an
    attack from outside)."""
    client, auth = api
    packs.make("failing", {"deploy.yaml": workflow_yaml("failing.echo")})
    r = client.post("/api/v1/packs", json={"ref": "failing", "label": "f", "version": "1.0.0"}, headers=auth)
    assert r.status_code == 201, r.text
    if r.json().get("job_id"):
        assert wait_job(client, auth, r.json()["job_id"])["status"] == "failed"
    r = sync(client, auth, "failing")
    assert r.status_code == 500, r.text
    assert "Failed to sync workflows" in r.json()["error"] and r.json()["job_id"]
    assert client.get(f"/api/v1/jobs/{r.json()['job_id']}", headers=auth).json()["data"]["status"] == "failed"
    r = client.get("/api/v1/workflows", params={"pack": "failing"}, headers=auth)
    assert r.status_code == 200 and r.json()["data"] == []  # nothing registered
