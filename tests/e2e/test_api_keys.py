"""Issue 18: API keys through HTTP (revocation, expiry, the secret shown once and never logged,
guessing throttled, hostile strings), roles changed under a live token, and the actor
named on jobs and revisions. A real worker runs the syncs."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import _purge_queue, workflow_yaml

pytestmark = pytest.mark.e2e


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_key(client, auth, **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/keys", json={"name": "ci", "role": "editor", **body}, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def test_the_secret_is_shown_once_stored_as_a_hash_and_never_logged(client, auth, caplog, packs):
    from sqlalchemy import text

    from attune.db.engine import get_engine

    caplog.set_level(logging.DEBUG)  # every logger, the access log included
    packs.make("mine", {"hello.yaml": workflow_yaml("mine.echo")})
    key = make_key(client, auth, packs=["mine"])
    secret = key["secret"]
    key_id, random_part = secret.split("_", 2)[1:]
    assert secret.startswith("atk_") and key_id == key["id"] and len(random_part) >= 43  # 32 bytes, base64
    assert client.post("/api/v1/packs", json={"ref": "mine"}, headers=bearer(secret)).status_code == 201
    assert client.get("/api/v1/packs/mine", headers=bearer(secret)).status_code == 200
    assert client.get("/api/v1/packs/mine", headers=bearer(secret[:-1] + "x")).status_code == 401
    listed = client.get("/api/v1/keys", headers=auth)
    assert listed.status_code == 200 and random_part not in listed.text and "secret" not in listed.json()["data"][0]
    with get_engine().connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
    assert random_part not in stored
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records and random_part not in logged


def test_revocation_and_expiry_answer_401_at_once(client, auth, packs):
    from sqlalchemy import update
    from sqlmodel import col

    from attune.access.models import ApiKey
    from attune.db.engine import get_engine

    key = make_key(client, auth)
    assert client.get("/api/v1/packs", headers=bearer(key["secret"])).status_code == 200
    r = client.delete(f"/api/v1/keys/{key['id']}", headers=auth)
    assert r.status_code == 200 and r.json()["data"]["revoked_at"]
    refused = client.get("/api/v1/packs", headers=bearer(key["secret"]))
    assert refused.status_code == 401 and refused.json() == {"error": "API key revoked"}

    later = make_key(client, auth, name="short", expires_in_days=1)
    assert client.get("/api/v1/packs", headers=bearer(later["secret"])).status_code == 200
    with get_engine().begin() as conn:  # its day is over
        conn.execute(
            update(ApiKey).where(col(ApiKey.name) == "short").values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    expired = client.get("/api/v1/packs", headers=bearer(later["secret"]))
    assert expired.status_code == 401 and expired.json() == {"error": "API key expired"}


def test_last_use_is_recorded_and_listing_is_per_user(client, auth):
    from attune.db.engine import session_scope
    from attune.users.service import create_user

    key = make_key(client, auth)
    assert key["last_used_at"] is None
    client.get("/api/v1/packs", headers=bearer(key["secret"]))
    mine = client.get("/api/v1/keys", headers=auth).json()["data"]
    assert mine[0]["last_used_at"] is not None and mine[0]["last_used_from"] == "testclient"
    with session_scope() as s:
        create_user(s, "bob", "bob password 1", "editor")  # type: ignore[arg-type]
    bob = bearer(
        client.post("/auth/login", json={"login": "bob", "password": "bob password 1"}).json()["data"]["access_token"]
    )
    assert client.get("/api/v1/keys", headers=bob).json()["data"] == []  # not alice's
    assert client.delete(f"/api/v1/keys/{key['id']}", headers=bob).status_code == 404
    r = client.post("/api/v1/keys", json={"name": "up", "role": "admin"}, headers=bob)
    assert r.status_code == 403 and "above yours" in r.json()["error"]
    make_key(client, bob, name="bobs")
    assert {k["owner"] for k in client.get("/api/v1/keys", headers=auth).json()["data"]} == {"alice", "bob"}  # admin


def test_a_demoted_user_loses_rights_on_the_next_request_tokens_and_keys_alike(client, auth, packs):
    from attune.db.engine import session_scope
    from attune.users.service import create_user

    packs.make("demo", {"hello.yaml": workflow_yaml("demo.echo")})
    with session_scope() as s:
        create_user(s, "carol", "carol password 1", "editor")  # type: ignore[arg-type]
    token = client.post("/auth/login", json={"login": "carol", "password": "carol password 1"}).json()["data"]
    carol = bearer(token["access_token"])
    key = make_key(client, carol)
    assert client.post("/api/v1/packs", json={"ref": "demo"}, headers=carol).status_code == 201
    assert client.put("/api/v1/packs/demo", json={"description": "b"}, headers=bearer(key["secret"])).status_code == 200
    r = client.put("/api/v1/users/carol", json={"role": "viewer"}, headers=auth)
    assert r.status_code == 200 and r.json()["data"]["role"] == "viewer"
    for headers in (carol, bearer(key["secret"])):  # the same token, the same key: now a viewer
        refused = client.put("/api/v1/packs/demo", json={"description": "c"}, headers=headers)
        assert refused.status_code == 403 and "'editor' role" in refused.json()["error"]
        assert client.get("/api/v1/packs/demo", headers=headers).status_code == 200
    assert client.put("/api/v1/users/carol", json={"active": False}, headers=auth).status_code == 200
    for headers in (carol, bearer(key["secret"])):
        assert client.get("/api/v1/packs/demo", headers=headers).status_code == 401
    # the last admin cannot demote itself
    assert client.put("/api/v1/users/alice", json={"role": "editor"}, headers=auth).status_code == 409


def test_guessing_keys_is_throttled_per_address(client, auth):
    from attune.config import get_settings

    limit = get_settings().auth.login_max_failures
    key = make_key(client, auth)
    wrong = f"atk_{key['id']}_" + "A" * 43
    for _ in range(limit):
        assert client.get("/api/v1/packs", headers=bearer(wrong)).status_code == 401
    refused = client.get("/api/v1/packs", headers=bearer(wrong))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many invalid API keys" in refused.json()["error"]


KEYISH = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200),
    st.builds(lambda i, s: f"atk_{i}_{s}", st.text("0123456789abcdef_", max_size=20),
              st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)),
)  # fmt: skip


@settings(max_examples=int(os.environ.get("ATTUNE_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(token=KEYISH)
def test_hostile_key_strings_are_401_never_a_500(client, configured, token):
    _purge_queue(configured["ATTUNE__CELERY__BROKER_URL"])  # the guess counter: each example starts at 0
    r = client.get("/api/v1/packs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, (token, r.text)
    assert isinstance(r.json()["error"], str)


def finished(client, auth, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=auth).json()["data"]
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_jobs_and_revisions_name_the_key_and_auto_syncs_say_auto(worker, client, auth, packs):
    packs.make("actor", {"hello.yaml": workflow_yaml("actor.echo")})
    key = make_key(client, auth, name="deployer", packs=["actor"])
    created = client.post("/api/v1/packs", json={"ref": "actor"}, headers=bearer(key["secret"]))
    assert created.status_code == 201
    auto = finished(client, auth, created.json()["job_id"])
    assert auto["trigger"] == "auto" and auto["started_by"] == f"key:deployer#{key['id']}"
    packs.make("actor", {"hello.yaml": workflow_yaml("actor.echo", desc="second")})
    synced = client.post("/api/v1/packs/actor/workflows/sync", headers=bearer(key["secret"]))
    assert synced.status_code == 200, synced.text
    job = client.get(f"/api/v1/jobs/{synced.json()['data']['job_id']}", headers=auth).json()["data"]
    assert job["started_by"] == f"key:deployer#{key['id']}"
    revisions = client.get("/api/v1/workflows/actor.hello/revisions", headers=auth).json()["data"]
    by_job = {r["job_id"]: r["author"] for r in revisions}
    assert by_job[job["id"]] == f"key:deployer#{key['id']}"
    assert auto["status"] == "succeeded" and by_job[auto["id"]] == "auto"
    deleted = client.delete("/api/v1/packs/actor", headers=auth)
    assert deleted.status_code == 204
    tombstone = client.get("/api/v1/workflows/actor.hello/revisions", headers=auth).json()["data"][0]
    assert tombstone["change"] == "remove" and tombstone["author"] == "alice"


def test_guesses_lock_out_only_what_they_guess(client, auth, configured):
    """Found from outside: ten garbage keys from an address locked every key user of that
    address out for five minutes (a shared CI runner), and a revoked key, retried, turned
    into 429 after ten tries and locked out the new key too."""
    from attune.config import get_settings

    _purge_queue(configured["ATTUNE__CELERY__BROKER_URL"])  # the guess counters
    limit = get_settings().auth.login_max_failures
    good, target, revoked = make_key(client, auth), make_key(client, auth), make_key(client, auth)
    assert client.delete(f"/api/v1/keys/{revoked['id']}", headers=auth).status_code == 200
    for _ in range(limit + 3):  # a revoked key is no guess: its own reason, every time
        r = client.get("/api/v1/packs", headers=bearer(revoked["secret"]))
        assert r.status_code == 401 and r.json()["error"] == "API key revoked", r.text
    for n in range(limit + 1):  # garbage: unknown ids
        client.get("/api/v1/packs", headers=bearer(f"atk_{n:016x}_" + "A" * 43))
    assert client.get("/api/v1/packs", headers=bearer("atk_ffffffffffffffff_" + "B" * 43)).status_code == 429
    for _ in range(limit + 1):  # wrong secrets of one key
        client.get("/api/v1/packs", headers=bearer(f"atk_{target['id']}_" + "C" * 43))
    assert client.get("/api/v1/packs", headers=bearer(target["secret"])).status_code == 429  # that key: locked
    assert client.get("/api/v1/packs", headers=bearer(good["secret"])).status_code == 200  # another: not


def test_a_user_holds_at_most_so_many_live_keys_and_the_list_is_paged(client, auth):
    """Found from outside: a viewer made 3,000 keys in a minute, and the admin's key list
    (no paging) grew to 1.5 MB, 50 of them at once slowing every other request."""
    from attune.access.service import MAX_LIVE_KEYS

    made = [make_key(client, auth, name=f"k{n}") for n in range(MAX_LIVE_KEYS)]
    r = client.post("/api/v1/keys", json={"name": "one-more", "role": "viewer"}, headers=auth)
    assert r.status_code == 409 and "revoke one first" in r.json()["error"], r.text
    assert client.delete(f"/api/v1/keys/{made[0]['id']}", headers=auth).status_code == 200
    assert client.post("/api/v1/keys", json={"name": "one-more", "role": "viewer"}, headers=auth).status_code == 201
    page = client.get("/api/v1/keys", params={"limit": 10, "offset": 95}, headers=auth).json()
    assert page["pagination"] == {"total": MAX_LIVE_KEYS + 1, "limit": 10, "offset": 95}
    assert len(page["data"]) == 6 and page["message"] == f"6 of {MAX_LIVE_KEYS + 1} API keys"
    whole = client.get("/api/v1/keys", headers=auth).json()
    assert len(whole["data"]) == 100 and whole["pagination"]["limit"] == 100


def test_parallel_creations_do_not_pass_the_limit(client, auth):
    import threading

    from attune.access.service import MAX_LIVE_KEYS

    for n in range(MAX_LIVE_KEYS - 3):
        make_key(client, auth, name=f"k{n}")
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def one(n: int) -> None:
        barrier.wait()
        r = client.post("/api/v1/keys", json={"name": f"race{n}", "role": "viewer"}, headers=auth)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] * 3 + [409] * 7, statuses
    assert client.get("/api/v1/keys", headers=auth).json()["pagination"]["total"] == MAX_LIVE_KEYS


def test_another_packs_job_is_refused_without_naming_its_pack(client, auth):
    """Found from outside: a key limited to one pack, asking for a job id of another pack,
    was told that job's pack ('... not 'p_1'')."""
    for ref in ("mine", "hidden_pack_name"):
        assert (
            client.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1"}, headers=auth).status_code
            == 201
        )
    theirs = client.get("/api/v1/packs/hidden_pack_name/jobs", headers=auth).json()["data"][0]["id"]
    key = make_key(client, auth, packs=["mine"])
    r = client.get(f"/api/v1/jobs/{theirs}", headers=bearer(key["secret"]))
    assert r.status_code == 403 and "limited to packs mine" in r.json()["error"], r.text
    assert "hidden_pack_name" not in r.text


def test_a_key_reads_the_progress_of_a_bulk_sync_of_its_packs_only(client, auth):
    """Found from outside: a key limited to packs could start a bulk sync of its packs but
    not follow it (GET /api/v1/jobs/batches/{id} was refused to every such key). It reads
    a batch whose jobs are all of its packs; any other batch is refused without naming the
    other packs."""
    for ref in ("mine", "also_mine", "hidden_pack_name"):
        r = client.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1"}, headers=auth)
        assert r.status_code == 201, r.text
    key = bearer(make_key(client, auth, packs=["mine", "also_mine"])["secret"])
    r = client.post("/api/v1/packs/sync", json={"packs": ["mine", "also_mine"]}, headers=key)
    assert r.status_code == 202, r.text
    own = client.get(f"/api/v1/jobs/batches/{r.json()['data']['batch_id']}", headers=key)
    assert own.status_code == 200 and own.json()["data"]["jobs_total"] == 2, own.text
    r = client.post("/api/v1/packs/sync", json={"packs": ["mine", "hidden_pack_name"]}, headers=auth)
    mixed = client.get(f"/api/v1/jobs/batches/{r.json()['data']['batch_id']}", headers=key)
    assert mixed.status_code == 403 and "limited to packs" in mixed.json()["error"], mixed.text
    assert "hidden_pack_name" not in mixed.text
    everything = client.post("/api/v1/packs/sync", json={}, headers=auth).json()["data"]["batch_id"]
    assert client.get(f"/api/v1/jobs/batches/{everything}", headers=key).status_code == 403
    unknown = client.get("/api/v1/jobs/batches/00000000-0000-0000-0000-000000000000", headers=key)
    assert unknown.status_code == 404
