"""Nothing registered is lost to a file-system error, through the API and a real worker:
a workflows/ or actions/ folder replaced by a link, a file or a removed-and-recreated
folder refuses the sync (200 with the reason in `errors`, nothing removed); a full sync
prunes the last removed file; staging rows of finished jobs are swept."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from tests.conftest import workflow_yaml
from tests.e2e.test_sync import create_pack, sync

pytestmark = pytest.mark.e2e
ACTION = "runner_type: shell\nentry_point: run.sh\n"


@pytest.fixture
def api(worker, client, auth):
    return client, auth


def _registered(client, auth, ref: str) -> list[str]:
    data = client.get(f"/api/v1/workflows?pack={ref}&limit=100", headers=auth).json()["data"]
    return sorted(w["ref"] for w in data)


def _link(folder):
    elsewhere = folder.parent.parent / f"{folder.parent.name}-{folder.name}-empty"
    elsewhere.mkdir()
    shutil.rmtree(folder)
    folder.symlink_to(elsewhere)


def _file(folder):
    shutil.rmtree(folder)
    folder.write_text("")


@pytest.mark.parametrize("folder", ["workflows", "actions"])
@pytest.mark.parametrize("damage", [_link, _file], ids=["symlink", "file"])
def test_unusable_folder_keeps_the_registry(api, packs, folder, damage):
    client, auth = api
    ref = f"keep-{folder}-{damage.__name__.strip('_')}"
    root = packs.make(ref, {"a.yaml": workflow_yaml(f"{ref}.echo"), "b.yaml": workflow_yaml(f"{ref}.echo")},
                      actions={"echo": ACTION})  # fmt: skip
    create_pack(client, auth, ref)
    before = _registered(client, auth, ref)
    assert before == [f"{ref}.a", f"{ref}.b"]
    damage(root / folder)
    for full in ("", "?full=true"):
        r = client.post(f"/api/v1/packs/{ref}/workflows/sync{full}", headers=auth)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["registered_count"] == 0 and data.get("removed", []) == []
        assert f"'{folder}" in data["errors"][0] and "nothing changed" in data["errors"][0]
        assert _registered(client, auth, ref) == before
    checked = client.post(f"/api/v1/packs/{ref}/workflows/validate", headers=auth).json()["data"]
    assert checked["error_count"] == 1


def test_full_sync_prunes_the_last_file(api, packs):
    client, auth = api
    root = packs.make("lastone", {"only.yaml": workflow_yaml("lastone.echo")}, actions={"echo": ACTION})
    create_pack(client, auth, "lastone")
    assert _registered(client, auth, "lastone") == ["lastone.only"]
    (root / "workflows" / "only.yaml").unlink()
    r = client.post("/api/v1/packs/lastone/workflows/sync?full=true", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["removed"] == ["lastone.only"]
    assert _registered(client, auth, "lastone") == []
    again = sync(client, auth, "lastone").json()["data"]  # and it stays gone
    assert again["removed"] == [] and _registered(client, auth, "lastone") == []


def test_job_listing_is_bounded(api, packs):
    """Listings carry each job's summary, not its result (the full result: GET /jobs/{id})."""
    client, auth = api
    packs.make("listing", {f"w{i}.yaml": workflow_yaml("listing.echo") for i in range(30)},
               actions={"echo": ACTION})  # fmt: skip
    created = create_pack(client, auth, "listing")
    listed = client.get("/api/v1/packs/listing/jobs", headers=auth).json()["data"]
    assert listed[0]["id"] == created["job_id"]
    assert listed[0]["result"] is None
    assert listed[0]["summary"]["registered_count"] == 30
    full = client.get(f"/api/v1/jobs/{created['job_id']}", headers=auth).json()["data"]
    assert len(full["result"]["workflows"]) == 30


def test_abandoned_staging_is_swept(api, packs):
    """Staging rows of a job that finished (a chunk that ran on after its job failed) go."""
    from attune.db.engine import get_engine
    from attune.jobs import pipeline

    client, auth = api
    packs.make("swept", {"a.yaml": workflow_yaml("swept.echo")}, actions={"echo": ACTION})
    job_id = create_pack(client, auth, "swept")["job_id"]
    with get_engine().begin() as c:
        is_pg = c.dialect.name == "postgresql"
        jid = job_id if is_pg else job_id.replace("-", "")
        c.execute(text("INSERT INTO sync_chunks (job_id, chunk, files) VALUES (:j, 7, 1)"), {"j": jid})
        c.execute(
            text(
                "INSERT INTO sync_staging (job_id, position, ref, chunk, status, name, source_file, content_hash, stat) "
                "VALUES (:j, 0, 'swept.x', 7, 1, 'x', 'workflows/x.yaml', '', '')"
            ),
            {"j": jid},
        )
    pipeline.sweep_stale()
    with get_engine().connect() as c:
        assert c.execute(text("SELECT count(*) FROM sync_staging")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM sync_chunks")).scalar() == 0
