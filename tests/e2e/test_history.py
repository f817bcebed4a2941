"""History and plan end to end (issue 16): HTTP -> API -> broker -> a real worker -> the
database. Revisions numbered per ref across update, removal and return; diffs; a dry run
that writes nothing and equals the sync that follows; who started each job."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import WORKER_CHUNK_SIZE, workflow_yaml
from tests.e2e.test_sync import create_pack, sync

pytestmark = pytest.mark.e2e

BROKEN = 'version: "1.0"\ndescription: no tasks\n'
THREE_TASKS = workflow_yaml("hist.echo", desc="three tasks") + "  - name: extra\n    action: hist.echo\n"


@pytest.fixture
def api(worker, client, auth):
    return client, auth


def revisions(client, auth, ref: str, **params) -> list[dict]:
    r = client.get(f"/api/v1/workflows/{ref}/revisions", headers=auth, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def plan(client, auth, ref: str, **params) -> dict:
    r = client.post(f"/api/v1/packs/{ref}/workflows/sync", headers=auth, params={"dry_run": "true", **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def counts() -> dict[str, object]:
    """Every row a sync could write, as it is (not only how many)."""
    from attune.db.engine import get_engine

    queries = {
        "workflows": "SELECT ref, revision, content_hash, CAST(definition AS TEXT), updated_at "
        "FROM workflow_definitions ORDER BY ref",
        "files": "SELECT pack_id, source_file, stat, content_hash, status FROM pack_files ORDER BY source_file",
        "revisions": "SELECT ref, number, change, job_id FROM workflow_revisions ORDER BY ref, number",
        "actions": "SELECT ref, content_hash, updated_at FROM actions ORDER BY ref",
        "staging": "SELECT count(*) FROM sync_staging",
    }
    with get_engine().connect() as conn:
        return {k: conn.execute(text(q)).all() for k, q in queries.items()}


def test_revisions_numbered_across_update_removal_and_return(api, packs):
    client, auth = api
    root = packs.make("hist", {"a.yaml": workflow_yaml("hist.echo", desc="v1"), "b.yaml": workflow_yaml("hist.echo")})
    created = create_pack(client, auth, "hist")  # the auto-sync writes revision 1 of each
    [r1] = revisions(client, auth, "hist.a")
    assert (r1["number"], r1["change"], r1["author"]) == (1, "create", "auto")
    assert r1["job_id"] == created["job_id"]
    assert r1["source_file"] == "workflows/a.yaml" and len(r1["file_sha256"]) == 64
    assert len(r1["definition_hash"]) == 64 and "definition" not in r1

    # an unchanged re-sync (and a forced one, whose definitions are the same) writes nothing
    assert sync(client, auth, "hist").status_code == 200
    assert client.post("/api/v1/packs/hist/workflows/sync?full=true", headers=auth).status_code == 200
    assert len(revisions(client, auth, "hist.a")) == 1
    # a file changed in a way the normalised definition does not see: no revision either
    (root / "workflows" / "b.yaml").write_text("# a comment\n" + workflow_yaml("hist.echo"))
    assert sync(client, auth, "hist").json()["data"]["unchanged_count"] == 1
    assert len(revisions(client, auth, "hist.b")) == 1

    (root / "workflows" / "a.yaml").write_text(workflow_yaml("hist.echo", desc="v2"))
    data = sync(client, auth, "hist").json()["data"]
    newest = revisions(client, auth, "hist.a")
    assert [(r["number"], r["change"], r["author"]) for r in newest] == [(2, "update", "alice"), (1, "create", "auto")]
    assert newest[0]["job_id"] == data["job_id"]
    wf = client.get("/api/v1/workflows/hist.a", headers=auth).json()["data"]
    assert wf["revision"] == 2 and wf["description"] == "v2"
    assert client.get("/api/v1/workflows/hist.b", headers=auth).json()["data"]["revision"] == 1

    (root / "workflows" / "a.yaml").unlink()
    assert sync(client, auth, "hist").json()["data"]["removed"] == ["hist.a"]
    tomb = revisions(client, auth, "hist.a")[0]
    assert (tomb["number"], tomb["change"], tomb["definition_hash"], tomb["source_file"]) == (3, "remove", None, None)
    assert client.get("/api/v1/workflows/hist.a/revisions/3", headers=auth).json()["data"]["definition"] is None
    assert client.get("/api/v1/workflows/hist.a", headers=auth).status_code == 404  # gone, its history kept

    # it comes back (with the v1 text): numbering continues, as a creation
    (root / "workflows" / "a.yaml").write_text(workflow_yaml("hist.echo", desc="v1"))
    assert sync(client, auth, "hist").json()["data"]["workflows"][0]["created"] is True
    back = revisions(client, auth, "hist.a")
    assert [(r["number"], r["change"]) for r in back] == [(4, "create"), (3, "remove"), (2, "update"), (1, "create")]
    assert back[0]["definition_hash"] == back[3]["definition_hash"]  # the same definition, the same hash
    assert client.get("/api/v1/workflows/hist.a", headers=auth).json()["data"]["revision"] == 4

    # paginated, newest first
    page = client.get("/api/v1/workflows/hist.a/revisions?limit=2&offset=1", headers=auth).json()
    assert [r["number"] for r in page["data"]] == [3, 2] and page["pagination"]["total"] == 4
    # an invalid file keeps the registered definition, and writes no revision
    (root / "workflows" / "a.yaml").write_text(BROKEN)
    assert sync(client, auth, "hist").json()["data"]["errors"]
    assert len(revisions(client, auth, "hist.a")) == 4


def test_diff_content_and_summary(api, packs):
    client, auth = api
    root = packs.make("hist", {"a.yaml": workflow_yaml("hist.echo", desc="first")})
    create_pack(client, auth, "hist")
    (root / "workflows" / "a.yaml").write_text(THREE_TASKS.replace("three tasks", "second"))
    sync(client, auth, "hist")

    r = client.get("/api/v1/workflows/hist.a/revisions/2/diff", headers=auth)
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert (d["number"], d["against"]) == (2, 1)
    assert d["summary"] == {"tasks_added": ["extra"], "tasks_removed": [], "tasks_changed": [],
                            "fields_changed": ["description"]}  # fmt: skip
    lines = d["diff"].splitlines()
    assert lines[0] == "--- hist.a (revision 1)" and lines[1] == "+++ hist.a (revision 2)"
    assert "-description: first" in lines and "+description: second" in lines
    assert "+- name: extra" in lines and "+  action: hist.echo" in lines
    # explicit against, either way round; against itself: nothing
    back = client.get("/api/v1/workflows/hist.a/revisions/1/diff?against=2", headers=auth).json()["data"]
    assert back["summary"]["tasks_removed"] == ["extra"] and "+description: first" in back["diff"]
    same = client.get("/api/v1/workflows/hist.a/revisions/2/diff?against=2", headers=auth).json()["data"]
    assert same["diff"] == "" and same["summary"]["fields_changed"] == []
    # the first revision: against nothing
    first = client.get("/api/v1/workflows/hist.a/revisions/1/diff", headers=auth).json()["data"]
    assert first["against"] is None and first["diff"].startswith("--- /dev/null")
    assert first["summary"]["tasks_added"] == ["start", "finish"]
    one = client.get("/api/v1/workflows/hist.a/revisions/1", headers=auth).json()["data"]
    assert one["definition"]["description"] == "first" and one["number"] == 1


def test_hostile_revision_numbers_answer_4xx(api, packs):
    client, auth = api
    packs.make("hist", {"a.yaml": workflow_yaml("hist.echo")})
    packs.make("other", {"b.yaml": workflow_yaml("other.echo")})
    create_pack(client, auth, "hist")
    create_pack(client, auth, "other")
    root = packs.make("other", {"b.yaml": workflow_yaml("other.echo", desc="two")})
    assert root.exists()
    sync(client, auth, "other")  # other.b has revision 2, hist.a only 1
    base = "/api/v1/workflows/hist.a/revisions/1/diff"
    for against, status in [("-1", 422), ("0", 422), (str(2**31), 422), ("9" * 40, 422), ("1e3", 422),
                            ("other.b", 422), ("other.b:2", 422), (str(2**31 - 1), 404), ("2", 404)]:  # fmt: skip
        r = client.get(base, params={"against": against}, headers=auth)
        assert r.status_code == status, (against, r.status_code, r.text)
        assert isinstance(r.json()["error"], str)
    for path, status in [("/api/v1/workflows/hist.a/revisions/0", 422), ("/api/v1/workflows/hist.a/revisions/-1", 422),
                         (f"/api/v1/workflows/hist.a/revisions/{2**31}", 422),
                         (f"/api/v1/workflows/hist.a/revisions/{2**31 - 1}", 404),
                         ("/api/v1/workflows/hist.a/revisions/2/diff", 404),
                         ("/api/v1/workflows/hist.zz/revisions", 404),
                         ("/api/v1/workflows/hist.a/revisions?limit=0", 422),
                         ("/api/v1/workflows/..%2F..%2Fetc/revisions", 404),
                         ("/api/v1/workflows/hist.a%00/revisions", 422)]:  # fmt: skip
        r = client.get(path, headers=auth)
        assert r.status_code == status, (path, r.status_code, r.text)


def test_every_new_route_needs_a_token(api, packs):
    client, auth = api
    packs.make("hist", {"a.yaml": workflow_yaml("hist.echo")})
    create_pack(client, auth, "hist")
    before = counts()
    for method, path in [("GET", "/api/v1/workflows/hist.a/revisions"), ("GET", "/api/v1/workflows/hist.a/revisions/1"),
                         ("GET", "/api/v1/workflows/hist.a/revisions/1/diff"),
                         ("POST", "/api/v1/packs/hist/workflows/sync?dry_run=true")]:  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            r = client.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, r.status_code)
        assert client.request(method, path, headers=auth).status_code == 200
    assert counts() == before


def test_dry_run_writes_nothing_and_equals_the_sync(api, packs):
    client, auth = api
    root = packs.make(
        "hist",
        {"same.yaml": workflow_yaml("hist.echo"), "changed.yaml": workflow_yaml("hist.echo", desc="old"),
         "gone.yaml": workflow_yaml("hist.echo"), "fixed.yaml": BROKEN},
        actions={"echo": "runner_type: shell\n", "old_action": "runner_type: shell\n"},
    )  # fmt: skip
    create_pack(client, auth, "hist")
    (root / "workflows" / "changed.yaml").write_text(THREE_TASKS.replace("three tasks", "new"))
    (root / "workflows" / "gone.yaml").unlink()
    (root / "workflows" / "new.yaml").write_text(workflow_yaml("hist.echo"))
    (root / "workflows" / "broken.yaml").write_text(BROKEN)
    (root / "actions" / "old_action.yaml").unlink()
    (root / "actions" / "new_action.yaml").write_text("runner_type: python\n")
    (root / "actions" / "echo.yaml").write_text("runner_type: python\n")

    before = counts()
    planned = plan(client, auth, "hist")
    assert counts() == before  # not the registry, not the file cache, not revisions, not staging
    again = plan(client, auth, "hist")  # nothing was written: the same plan again
    assert again["workflows"] == planned["workflows"]

    changes = {w["ref"]: w["change"] for w in planned["workflows"]}
    assert changes == {"hist.same": "unchanged", "hist.changed": "update", "hist.gone": "remove",
                       "hist.new": "create", "hist.broken": "error", "hist.fixed": "error"}  # fmt: skip
    assert planned["counts"] == {"create": 1, "update": 1, "unchanged": 1, "remove": 1, "error": 2}
    update = next(w for w in planned["workflows"] if w["ref"] == "hist.changed")
    assert update["revision"] == 2
    assert update["summary"] == {"tasks_added": ["extra"], "tasks_removed": [], "tasks_changed": [],
                                 "fields_changed": ["description"]}  # fmt: skip
    assert "-description: old" in update["diff"].splitlines() and "+description: new" in update["diff"].splitlines()
    assert update["diff"].startswith("--- hist.changed (registered, revision 1)\n+++ hist.changed (files)\n")
    broken = next(w for w in planned["workflows"] if w["ref"] == "hist.broken")
    assert broken["diagnostics"][0]["code"] == "missing-field" and broken["diagnostics"][0]["line"] == 1
    assert {a["ref"]: a["change"] for a in planned["actions"]} == {
        "hist.echo": "update", "hist.new_action": "create", "hist.old_action": "remove"}  # fmt: skip

    # the sync that follows does what the plan said
    done = sync(client, auth, "hist").json()["data"]
    assert counts() != before
    assert sorted(done["removed"]) == sorted(r for r, c in changes.items() if c == "remove")
    assert sorted(w["ref_name"] for w in done["workflows"] if w["created"]) == ["hist.new"]
    assert sorted(done["error_diagnostics"]) == sorted(r for r, c in changes.items() if c == "error")
    assert done["errors"] == planned["errors"]
    from attune.db.engine import get_engine

    with get_engine().connect() as conn:
        wrote = conn.execute(
            text("SELECT ref, number, change FROM workflow_revisions WHERE job_id = :j ORDER BY ref"),
            {"j": done["job_id"] if conn.dialect.name == "postgresql" else done["job_id"].replace("-", "")},
        ).all()
    assert [tuple(r) for r in wrote] == sorted(
        (w["ref"], w["revision"], w["change"]) for w in planned["workflows"] if w["revision"] is not None
    )
    assert sorted(done["actions"]["registered"]) == sorted(
        a["ref"] for a in planned["actions"] if a["change"] in ("create", "update", "unchanged")
    )
    # after it, the plan is empty
    after = plan(client, auth, "hist")
    assert after["counts"] == {"create": 0, "update": 0, "unchanged": 3, "remove": 0, "error": 2}


def test_plan_of_a_pack_the_sync_splits_into_chunks(api, packs):
    client, auth = api
    n = 2 * WORKER_CHUNK_SIZE + 5
    root = packs.make("big", {f"w{i:03d}.yaml": workflow_yaml("big.echo", desc=f"w{i}") for i in range(n)})
    create_pack(client, auth, "big")
    for i in range(0, n, 3):
        (root / "workflows" / f"w{i:03d}.yaml").write_text(workflow_yaml("big.echo", desc=f"changed {i}"))
    (root / "workflows" / "w001.yaml").unlink()
    before = counts()
    planned = plan(client, auth, "big", full="true")  # every file read: the sync fans out
    assert counts() == before
    done = client.post("/api/v1/packs/big/workflows/sync?full=true", headers=auth).json()["data"]
    job = client.get(f"/api/v1/jobs/{done['job_id']}", headers=auth).json()["data"]
    assert job["chunks_total"] and job["chunks_total"] > 1  # the chunked path
    revs = {
        w["ref"]: (w["number"], w["change"])
        for ref in [p["ref"] for p in planned["workflows"] if p["revision"]]
        for w in revisions(client, auth, ref)[:1]
    }
    assert revs == {p["ref"]: (p["revision"], p["change"]) for p in planned["workflows"] if p["revision"]}
    assert planned["counts"]["update"] == len(range(0, n, 3)) and planned["counts"]["remove"] == 1
    assert done["removed"] == ["big.w001"]


def test_jobs_say_who_started_them_and_deleted_packs_keep_history(api, packs):
    client, auth = api
    packs.make("hist", {"a.yaml": workflow_yaml("hist.echo")})
    created = create_pack(client, auth, "hist")
    done = sync(client, auth, "hist").json()["data"]
    job = client.get(f"/api/v1/jobs/{done['job_id']}", headers=auth).json()["data"]
    assert job["started_by"] == "alice" and job["kind"] == "sync"
    auto = client.get(f"/api/v1/jobs/{created['job_id']}", headers=auth).json()["data"]
    assert auto["started_by"] == "alice" and auto["trigger"] == "auto"
    planned = client.post("/api/v1/packs/hist/workflows/sync?dry_run=true", headers=auth).json()["data"]
    listed = client.get("/api/v1/packs/hist/jobs", headers=auth).json()["data"]
    assert [(j["kind"], j["started_by"]) for j in listed] == [("plan", "alice"), ("sync", "alice"), ("sync", "alice")]
    assert listed[0]["id"] == planned["job_id"]

    assert client.delete("/api/v1/packs/hist", headers=auth).status_code == 204
    kept = revisions(client, auth, "hist.a")
    assert (kept[0]["number"], kept[0]["change"], kept[0]["author"], kept[0]["job_id"]) == (2, "remove", "alice", None)
    # the sweep keeps them for revisions.retention_days, then removes them (a live pack's stay)
    packs.make("live", {"b.yaml": workflow_yaml("live.echo")})
    create_pack(client, auth, "live")
    from attune.db.engine import session_scope
    from attune.revisions import service

    with session_scope() as s:
        assert service.sweep_expired(s, retention_days=30) == 0
    assert len(revisions(client, auth, "hist.a")) == 2
    with session_scope() as s:
        assert service.sweep_expired(s, retention_days=1e-9) == 2
    assert client.get("/api/v1/workflows/hist.a/revisions", headers=auth).status_code == 404
    assert len(revisions(client, auth, "live.b")) == 1


def test_cli_plan_history_and_diff(cli, packs):
    from tests.e2e.conftest import login as _login

    root = packs.make("clih", {"a.yaml": workflow_yaml("clih.echo", desc="one"), "b.yaml": workflow_yaml("clih.echo")})
    _login(cli)
    assert cli("pack", "create", "clih").returncode == 0
    assert cli("pack", "sync", "clih").returncode == 0  # after the auto-sync: nothing new

    r = cli("pack", "plan", "clih")
    assert r.returncode == 0, r.stderr
    assert "No changes" in r.stdout and "Plan: 0 to create, 0 to update, 0 to remove, 2 unchanged" in r.stdout

    (root / "workflows" / "a.yaml").write_text(workflow_yaml("clih.echo", desc='"[two]"'))
    (root / "workflows" / "b.yaml").unlink()
    (root / "workflows" / "c.yaml").write_text(BROKEN)
    r = cli("pack", "plan", "clih")
    assert r.returncode == 1, r.stdout + r.stderr  # a workflow with errors
    assert "\x1b[" not in r.stdout  # plain when piped
    lines = r.stdout.splitlines()
    assert "  ~ workflow clih.a will be updated (revision 2)" in lines
    assert "      fields changed: description" in lines
    assert "      -description: one" in lines and '      +description: "[two]"' in lines  # markup-like text kept
    assert "  - workflow clih.b will be removed (revision 2)" in lines
    assert "  ! workflow clih.c has errors: will not register" in lines
    assert any("missing-field: Missing required field: tasks" in line for line in lines)
    assert lines[-1] == "Plan: 0 to create, 1 to update, 1 to remove, 0 unchanged, 1 with errors."
    as_json = cli("pack", "plan", "clih", "--json")
    assert as_json.returncode == 1
    planned = json.loads(as_json.stdout)  # the API's answer, envelope included, as every --json
    assert planned["data"]["counts"]["update"] == 1 and planned["message"].startswith("Plan of the pack's sync")
    (root / "workflows" / "c.yaml").unlink()
    assert cli("pack", "plan", "clih").returncode == 0  # would apply cleanly

    assert cli("pack", "sync", "clih").returncode == 0
    r = cli("workflow", "history", "clih.a")
    assert r.returncode == 0, r.stderr
    assert "update" in r.stdout and "create" in r.stdout and "alice" in r.stdout and "auto" in r.stdout
    hist = json.loads(cli("workflow", "history", "clih.a", "--json").stdout)
    assert [x["number"] for x in hist["data"]] == [2, 1]
    r = cli("workflow", "diff", "clih.a")  # the latest against the one before
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["clih.a: revision 1 -> 2", "fields changed: description"]
    assert '+description: "[two]"' in r.stdout.splitlines()
    r = cli("workflow", "diff", "clih.a", "1", "2")
    assert '-description: "[two]"' in r.stdout.splitlines() and r.stdout.startswith("clih.a: revision 2 -> 1")
    assert cli("workflow", "diff", "clih.a", "9").returncode == 4  # no such revision: refused
    assert cli("workflow", "history", "clih.nope").returncode == 4
