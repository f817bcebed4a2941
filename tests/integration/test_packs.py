"""Pack CRUD through HTTP."""

from __future__ import annotations

import pytest

PACK = {"ref": "my_pack", "label": "My Pack", "version": "1.0.0", "description": "A custom pack"}


def test_create_and_show(client, auth):
    r = client.post("/api/v1/packs", json=PACK, headers=auth)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["message"].startswith("Pack created")
    assert body["data"]["ref"] == "my_pack"
    assert body["data"]["label"] == "My Pack"
    r = client.get("/api/v1/packs/my_pack", headers=auth)
    assert r.status_code == 200
    assert r.json()["data"]["description"] == "A custom pack"


def test_duplicate_is_409(client, auth):
    assert client.post("/api/v1/packs", json=PACK, headers=auth).status_code == 201
    r = client.post("/api/v1/packs", json=PACK, headers=auth)
    assert r.status_code == 409
    assert r.json() == {"error": "Pack 'my_pack' already exists"}


def test_unknown_pack_is_404(client, auth):
    for method in ("GET", "PUT", "DELETE"):
        r = client.request(method, "/api/v1/packs/nonexistent_pack", headers=auth, json={"label": "x"})
        assert r.status_code == 404, method
        assert r.json() == {"error": "Pack 'nonexistent_pack' not found"}


@pytest.mark.parametrize("ref", ["My_Pack", "1pack", "_pack", "my.pack", "my pack", "", "a" * 101, "pack/x", "päck"])
def test_invalid_ref_in_body_is_422(client, auth, ref):
    r = client.post("/api/v1/packs", json={**PACK, "ref": ref}, headers=auth)
    assert r.status_code == 422, r.text
    assert "error" in r.json()


@pytest.mark.parametrize("ref", ["My_Pack", "1pack", "my.pack", "..", "%2e%2e", "a" * 101, "x%00y"])
def test_invalid_ref_in_path_is_rejected(client, auth, ref):
    r = client.get(f"/api/v1/packs/{ref}", headers=auth)
    assert r.status_code in (404, 422), r.text
    if r.status_code == 422:
        assert r.json()["error"].startswith("Invalid pack ref")


def test_missing_required_fields(client, auth):
    r = client.post("/api/v1/packs", json={"ref": "p"}, headers=auth)
    assert r.status_code == 422
    assert r.json()["error"].startswith("Missing required field")


def test_unknown_field_rejected(client, auth):
    r = client.post("/api/v1/packs", json={**PACK, "colour": "blue"}, headers=auth)
    assert r.status_code == 422
    assert r.json()["error"] == "Unknown field: colour"


def test_malformed_json(client, auth):
    r = client.post("/api/v1/packs", content=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422
    assert "error" in r.json()


def test_partial_update(client, auth):
    client.post("/api/v1/packs", json=PACK, headers=auth)
    r = client.put("/api/v1/packs/my_pack", json={"version": "1.1.0", "label": "My Pack (Updated)"}, headers=auth)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["version"] == "1.1.0"
    assert data["label"] == "My Pack (Updated)"
    assert data["description"] == "A custom pack"  # untouched
    assert data["updated_at"] >= data["created_at"]


def test_update_rejects_bad_values(client, auth):
    client.post("/api/v1/packs", json=PACK, headers=auth)
    r = client.put("/api/v1/packs/my_pack", json={"version": "x" * 51}, headers=auth)
    assert r.status_code == 422
    r = client.put("/api/v1/packs/my_pack", json={"ref": "other"}, headers=auth)
    assert r.status_code == 422


def test_delete(client, auth):
    client.post("/api/v1/packs", json=PACK, headers=auth)
    r = client.delete("/api/v1/packs/my_pack", headers=auth)
    assert r.status_code == 204
    assert client.get("/api/v1/packs/my_pack", headers=auth).status_code == 404


def test_list_is_paginated(client, auth):
    for i in range(5):
        client.post("/api/v1/packs", json={**PACK, "ref": f"pack_{i}"}, headers=auth)
    r = client.get("/api/v1/packs?limit=2&offset=1", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert [p["ref"] for p in body["data"]] == ["pack_1", "pack_2"]
    assert body["pagination"] == {"total": 5, "limit": 2, "offset": 1}
    assert client.get("/api/v1/packs?limit=0", headers=auth).status_code == 422


def test_huge_body_is_413(client, auth):
    r = client.post(
        "/api/v1/packs",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert "too large" in r.json()["error"]


def test_unknown_route_is_json_404(client, auth):
    r = client.get("/api/v1/nothing-here", headers=auth)
    assert r.status_code == 404
    assert "error" in r.json()


def test_offset_beyond_what_the_database_takes_is_422(client, auth):
    r = client.get("/api/v1/packs?offset=525952949403886206469537792", headers=auth)
    assert r.status_code == 422
    assert "error" in r.json()


def test_undecodable_body_is_400(client, auth):
    r = client.put("/api/v1/packs/x", content=b"\xff\xfe\x00", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code in (400, 422)
    assert "error" in r.json()


def test_metadata_with_huge_numbers_is_stored(client, auth):
    r = client.post("/api/v1/packs", json={**PACK, "meta": {"n": 10**30}}, headers=auth)
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/packs/my_pack", headers=auth).json()["data"]["meta"] == {"n": 10**30}


def test_malformed_json_is_422_and_says_so(client, auth):
    """README: a body that is not JSON is a 422, like any other invalid input."""
    r = client.post("/api/v1/packs", content=b'{"ref": "x",', headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"].startswith("Malformed JSON body")


def test_every_missing_field_is_named(client):
    r = client.post("/auth/login", json={})
    assert r.status_code == 422
    assert r.json()["error"] == "Missing required fields: login, password"


def test_create_fills_what_the_request_leaves_out_from_pack_yaml(client, auth, packs):
    root = packs.make("manifested", {})
    (root / "pack.yaml").write_text('ref: manifested\nlabel: From the manifest\nversion: 2.5\ndescription: "Its own"\n')
    r = client.post("/api/v1/packs", json={"ref": "manifested"}, headers=auth)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert (data["label"], data["version"], data["description"]) == ("From the manifest", "2.5", "Its own")
    # the request wins over the manifest
    client.delete("/api/v1/packs/manifested", headers=auth)
    r = client.post("/api/v1/packs", json={"ref": "manifested", "version": "3.0.0"}, headers=auth)
    data = r.json()["data"]
    assert (data["label"], data["version"]) == ("From the manifest", "3.0.0")


def test_create_without_label_nor_manifest_names_both(client, auth):
    r = client.post("/api/v1/packs", json={"ref": "bare"}, headers=auth)
    assert r.status_code == 422
    assert r.json()["error"] == (
        "Missing required fields: label and version (give them in the request or in the pack's pack.yaml)"
    )
