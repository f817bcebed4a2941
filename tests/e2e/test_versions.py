"""Issue 17: packs pushed over HTTP as versioned archives, validated, activated, rolled
back; through the API with a real worker, Postgres and Redis (and in the embedded mode)."""

from __future__ import annotations

import hashlib

import pytest

from tests.archives import pack_files, tar_gz, zip_bytes
from tests.conftest import workflow_yaml
from tests.e2e.test_sync import wait_job

pytestmark = pytest.mark.e2e
BROKEN = 'version: "1.0"\ndescription: no tasks\n'


@pytest.fixture
def api(worker, client, auth):
    return client, auth


def push(client, auth, ref: str, body: bytes, **params):
    return client.post(f"/api/v1/packs/{ref}/versions", content=body, headers=auth, params=params)


def workflows_of(client, auth, ref: str) -> dict[str, str]:
    r = client.get("/api/v1/workflows", params={"pack": ref, "limit": 1000}, headers=auth)
    assert r.status_code == 200, r.text
    return {w["ref"]: w.get("description") for w in r.json()["data"]}


def test_push_creates_the_pack_stores_validates_and_activates(api):
    client, auth = api
    body = tar_gz(pack_files("pushed", {"deploy.yaml": workflow_yaml("pushed.echo", desc="one")}, version="1.2.0"))
    r = push(client, auth, "pushed", body)
    assert r.status_code == 200, r.text
    result = r.json()["data"]
    assert result["activated"] is True and result["outcome"] == "activated"
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["plan"]["counts"]["create"] == 1
    assert result["synced"]["registered_count"] == 1
    assert workflows_of(client, auth, "pushed") == {"pushed.deploy": "one"}

    pack = client.get("/api/v1/packs/pushed", headers=auth).json()["data"]
    assert pack["source"] == "version" and pack["active_version_id"] == result["version_id"]
    assert pack["label"] == "pushed pack" and pack["version"] == "1.2.0"

    listed = client.get("/api/v1/packs/pushed/versions", headers=auth).json()
    assert listed["pagination"]["total"] == 1
    v = listed["data"][0]
    assert v["active"] is True and v["state"] == "valid" and v["uploaded_by"] == "alice"
    assert v["manifest_version"] == "1.2.0" and v["file_count"] == 3 and v["size"] == len(body)

    one = client.get(f"/api/v1/packs/pushed/versions/{v['id']}", headers=auth).json()["data"]
    assert {f["path"] for f in one["files"]} == {"pack.yaml", "actions/echo.yaml", "workflows/deploy.yaml"}
    assert one["manifest"]["ref"] == "pushed"
    assert one["validation"]["counts"]["create"] == 1

    archive = client.get(f"/api/v1/packs/pushed/versions/{v['id']}/archive", headers=auth)
    assert archive.status_code == 200 and archive.content == body
    assert archive.headers["x-content-sha256"] == hashlib.sha256(body).hexdigest()


def test_identical_content_is_stored_once(api):
    client, auth = api
    body = tar_gz(pack_files("twice"))
    first = push(client, auth, "twice", body).json()["data"]
    second = push(client, auth, "twice", body)
    assert second.status_code == 200, second.text
    assert second.json()["data"]["version_id"] == first["version_id"]
    assert client.get("/api/v1/packs/twice/versions", headers=auth).json()["pagination"]["total"] == 1
    # the same bytes for another pack: a version of its own, one stored copy
    other = tar_gz(pack_files("twice").copy() | {"pack.yaml": "label: x\nversion: '1'\n"})
    push(client, auth, "twice_b", other)
    push(client, auth, "twice_c", other)
    from sqlalchemy import text

    from attune.db.engine import get_engine

    with get_engine().connect() as conn:
        sha = hashlib.sha256(other).hexdigest()
        assert conn.execute(text("SELECT count(*) FROM pack_blobs WHERE sha256 = :s"), {"s": sha}).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM pack_versions WHERE sha256 = :s"), {"s": sha}).scalar() == 2


def test_a_version_with_errors_is_refused_stored_and_inspectable(api):
    client, auth = api
    good = push(client, auth, "refuse", tar_gz(pack_files("refuse"))).json()["data"]
    bad = tar_gz(pack_files("refuse", {"deploy.yaml": workflow_yaml("refuse.echo"), "broken.yaml": BROKEN}))
    r = push(client, auth, "refuse", bad)
    assert r.status_code == 200, r.text
    refused = r.json()["data"]
    assert refused["activated"] is False and refused["outcome"] == "refused"
    assert any("refuse.broken" in e for e in refused["plan"]["errors"])
    pack = client.get("/api/v1/packs/refuse", headers=auth).json()["data"]
    assert pack["active_version_id"] == good["version_id"]
    assert set(workflows_of(client, auth, "refuse")) == {"refuse.deploy"}
    detail = client.get(f"/api/v1/packs/refuse/versions/{refused['version_id']}", headers=auth).json()["data"]
    assert detail["state"] == "refused" and detail["active"] is False
    assert detail["validation"]["counts"]["error"] == 1
    # the plan names the job that made it, in the answer and in the version (both read null)
    assert refused["job_id"] and refused["plan"]["job_id"] == refused["job_id"] == detail["validation"]["job_id"]
    # allow_errors activates it anyway: the valid workflow registers, the broken one is reported
    forced = push(client, auth, "refuse", bad, allow_errors="true").json()["data"]
    assert forced["activated"] is True and forced["version_id"] == refused["version_id"]
    # and the version no longer reads "valid" (it did, although its plan had errors)
    detail = client.get(f"/api/v1/packs/refuse/versions/{refused['version_id']}", headers=auth).json()["data"]
    assert detail["state"] == "errors" and detail["active"] is True
    listed = client.get("/api/v1/packs/refuse/versions", headers=auth).json()["data"]
    assert {v["id"]: v["state"] for v in listed} == {good["version_id"]: "valid", refused["version_id"]: "errors"}


def test_activate_false_validates_only_then_rollback_and_forward(api):
    client, auth = api
    v1 = tar_gz(pack_files("roll", {"deploy.yaml": workflow_yaml("roll.echo", desc="v1")}))
    v2 = zip_bytes(pack_files("roll", {"deploy.yaml": workflow_yaml("roll.echo", desc="v2"),
                                       "extra.yaml": workflow_yaml("roll.echo")}))  # fmt: skip
    first = push(client, auth, "roll", v1).json()["data"]
    staged = push(client, auth, "roll", v2, activate="false").json()["data"]
    assert staged["outcome"] == "validated" and staged["activated"] is False
    assert staged["plan"]["counts"]["update"] == 1 and staged["plan"]["counts"]["create"] == 1
    assert workflows_of(client, auth, "roll") == {"roll.deploy": "v1"}

    r = client.post(f"/api/v1/packs/roll/versions/{staged['version_id']}/activate", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["activated"] is True
    assert workflows_of(client, auth, "roll") == {"roll.deploy": "v2", "roll.extra": "a workflow"}

    back = client.post(f"/api/v1/packs/roll/versions/{first['version_id']}/activate", headers=auth).json()["data"]
    assert back["activated"] is True and back["plan"]["counts"]["remove"] == 1
    assert workflows_of(client, auth, "roll") == {"roll.deploy": "v1"}
    assert client.get("/api/v1/packs/roll", headers=auth).json()["data"]["active_version_id"] == first["version_id"]
    # a re-sync (the pack's update starts one) reads the active version, not a directory
    job = client.put("/api/v1/packs/roll", json={"description": "again"}, headers=auth).json()["job_id"]
    assert wait_job(client, auth, job)["status"] == "succeeded"
    assert workflows_of(client, auth, "roll") == {"roll.deploy": "v1"}


def test_retention_keeps_the_last_n_and_the_active_one(api, monkeypatch):
    client, auth = api
    from attune.config import get_settings

    monkeypatch.setattr(get_settings().versions, "keep", 2)  # the API's side prunes
    first = push(client, auth, "keep", tar_gz(pack_files("keep", version="1"))).json()["data"]
    for n in range(2, 5):
        body = tar_gz(pack_files("keep", {"deploy.yaml": workflow_yaml("keep.echo", desc=str(n))}, version=str(n)))
        push(client, auth, "keep", body, activate="false")
    versions = client.get("/api/v1/packs/keep/versions", headers=auth).json()["data"]
    assert [v["manifest_version"] for v in versions] == ["4", "3", "1"]  # the active one stays
    assert versions[-1]["id"] == first["version_id"] and versions[-1]["active"]


def test_retention_keeps_a_version_a_queued_activation_is_for(api, monkeypatch):
    """Found from outside: a rollback queued behind a busy worker, then a push, which pruned
    the version the rollback was for; the rollback failed "not found" (the CLI: exit 5).
    The queued job is written as the API writes it, with no worker to take it meanwhile."""
    client, auth = api
    from sqlalchemy import update

    from attune.config import get_settings
    from attune.db.engine import session_scope
    from attune.jobs import service as jobs
    from attune.jobs.models import Job, JobKind, JobTrigger
    from attune.packs import service as packs

    monkeypatch.setattr(get_settings().versions, "keep", 2)
    made = []
    for n in range(1, 4):
        body = tar_gz(pack_files("queued", {"deploy.yaml": workflow_yaml("queued.echo", desc=str(n))}, version=str(n)))
        made.append(push(client, auth, "queued", body, activate=str(n == 3).lower()).json()["data"]["version_id"])
    listed = [v["id"] for v in client.get("/api/v1/packs/queued/versions", headers=auth).json()["data"]]
    assert listed == [made[2], made[1]]  # the first, past keep, went with the third push
    oldest = made[1]
    with session_scope() as s:  # a rollback to it, queued: no worker has taken it yet
        job = jobs.create_jobs(s, packs.pack_ids(s, ["queued"]), JobKind.PUSH, JobTrigger.MANUAL, by=None,
                               batch_id=None)[0]  # fmt: skip
        s.execute(update(Job).where(Job.id == job.id).values(options={"version_id": oldest, "activate": True}))
    body = tar_gz(pack_files("queued", {"deploy.yaml": workflow_yaml("queued.echo", desc="4")}, version="4"))
    push(client, auth, "queued", body, activate="false")
    kept = [v["id"] for v in client.get("/api/v1/packs/queued/versions", headers=auth).json()["data"]]
    assert oldest in kept, kept  # the rollback's version stays until its job ends
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job.id).values(status="failed"))
    push(client, auth, "queued", tar_gz(pack_files("queued", version="5")), activate="false")
    kept = [v["id"] for v in client.get("/api/v1/packs/queued/versions", headers=auth).json()["data"]]
    assert oldest not in kept, kept  # then it goes as any old one


def test_deleting_a_pack_removes_the_archives_only_it_held(api):
    """Found from outside: the pack's versions went with it, their stored archives stayed
    in the database for good (up to versions.max_upload_bytes each)."""
    client, auth = api
    from sqlalchemy import text

    from attune.db.engine import get_engine

    shared = tar_gz(pack_files("gone_a"))
    own = push(client, auth, "gone_a", shared).json()["data"]
    only = push(client, auth, "gone_a", tar_gz(pack_files("gone_a", version="2"))).json()["data"]
    other = tar_gz(pack_files("gone_a").copy() | {"pack.yaml": "label: x\nversion: '1'\n"})
    kept = push(client, auth, "gone_b", other).json()["data"]
    push(client, auth, "gone_c", other)

    def stored(sha: str) -> bool:
        with get_engine().connect() as c:
            return c.execute(text("SELECT count(*) FROM pack_blobs WHERE sha256 = :s"), {"s": sha}).scalar() == 1

    assert stored(own["sha256"]) and stored(only["sha256"])
    assert client.delete("/api/v1/packs/gone_a", headers=auth).status_code == 204
    assert not stored(own["sha256"]) and not stored(only["sha256"])
    assert client.delete("/api/v1/packs/gone_b", headers=auth).status_code == 204
    assert stored(kept["sha256"])  # gone_c's version holds the same archive
    assert push(client, auth, "gone_a", shared).status_code == 200  # stored again, as new


def test_unknown_version_and_pack(api):
    client, auth = api
    assert client.get("/api/v1/packs/nope/versions", headers=auth).status_code == 404
    push(client, auth, "known", tar_gz(pack_files("known")))
    assert client.get("/api/v1/packs/known/versions/999", headers=auth).status_code == 404
    assert client.post("/api/v1/packs/known/versions/999/activate", headers=auth).status_code == 404
    assert client.get("/api/v1/packs/known/versions/999/archive", headers=auth).status_code == 404


def test_hostile_archives_are_422_naming_the_entry_and_store_nothing(api):
    import tarfile

    from tests.archives import tar_member

    client, auth = api
    base = pack_files("hostile")
    cases = {
        "/abs": tar_gz(base, extra=tar_member("/abs")),
        "../up": tar_gz(base, extra=tar_member("../up")),
        "ln": tar_gz(base, extra=tar_member("ln", tarfile.SYMTYPE, linkname="/etc/passwd")),
        "pack.yaml": tar_gz(pack_files("someone_else")),
    }
    for entry, body in cases.items():
        r = push(client, auth, "hostile", body)
        assert r.status_code == 422, r.text
        assert f"'{entry}'" in r.json()["error"]
    r = push(client, auth, "hostile", b"not an archive at all")
    assert r.status_code == 422 and "not a .tar.gz or .zip" in r.json()["error"]
    assert client.get("/api/v1/packs/hostile", headers=auth).status_code == 404  # nothing created or stored


def test_upload_limit_counts_a_chunked_body_as_it_arrives(api, monkeypatch):
    client, auth = api
    from attune.config import get_settings

    # the middleware was given the settings object: the limit is read per request
    monkeypatch.setattr(get_settings().versions, "max_upload_bytes", 64 * 1024)
    body = tar_gz({**pack_files("big"), "blob.bin": __import__("os").urandom(200_000)})

    def chunks():
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    r = client.post("/api/v1/packs/big/versions", content=chunks(), headers=auth)  # no Content-Length
    assert r.status_code == 413, r.text
    r = push(client, auth, "big", body)  # a Content-Length past the limit: refused before reading
    assert r.status_code == 413
    # the upload limit is its own: larger than the JSON body limit (1 MiB by default)
    monkeypatch.setattr(get_settings().versions, "max_upload_bytes", 50 * 1024 * 1024)
    big = tar_gz({**pack_files("big"), "blob.bin": __import__("os").urandom(2 * 1024 * 1024)})
    assert push(client, auth, "big", big).status_code == 200
