"""Login, refresh and every way a token can be wrong, through HTTP."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.conftest import TEST_SECRET

PROTECTED = [
    ("GET", "/api/v1/packs"),
    ("POST", "/api/v1/packs"),
    ("GET", "/api/v1/packs/core"),
    ("PUT", "/api/v1/packs/core"),
    ("DELETE", "/api/v1/packs/core"),
]


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _token(sub: str = "1", typ: str = "access", exp_delta: int = 600, secret: str = TEST_SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "type": typ, "iat": now, "exp": now + exp_delta}, secret, algorithm="HS256")


def test_login_returns_tokens(client, user):
    r = client.post("/auth/login", json=user)
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] > 0
    assert data["access_token"] and data["refresh_token"]
    assert r.json()["message"]


def test_token_gives_access(client, auth):
    r = client.get("/api/v1/packs", headers=auth)
    assert r.status_code == 200


def test_wrong_password_and_unknown_user_same_answer(client, user):
    wrong = client.post("/auth/login", json={"login": user["login"], "password": "nope-nope-nope"})
    unknown = client.post("/auth/login", json={"login": "mallory", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "Invalid login or password"}


def test_unknown_user_costs_the_same_time_as_wrong_password(client, user, monkeypatch):
    """No timing difference that reveals whether a login exists: an unknown login costs a
    password hash check like a known one (without it, it answers tens of times faster)."""
    import statistics

    from attune.config import get_settings

    monkeypatch.setattr(get_settings().auth, "login_max_failures", 10_000)

    def timed(login: str) -> float:
        start = time.perf_counter()
        r = client.post("/auth/login", json={"login": login, "password": "nope-nope-nope"})
        elapsed = time.perf_counter() - start
        assert r.status_code == 401
        return elapsed

    timed(user["login"]), timed("warm-up")
    known, unknown = [], []
    for i in range(15):  # interleaved, so that machine noise hits both alike
        known.append(timed(user["login"]))
        unknown.append(timed(f"nobody-{i}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (ratio, known, unknown)


def test_login_missing_field_is_422(client, db):
    r = client.post("/auth/login", json={"login": "x"})
    assert r.status_code == 422
    assert "password" in r.json()["error"]


def test_refresh_gives_new_access_token(client, tokens):
    r = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    new = r.json()["data"]["access_token"]
    assert client.get("/api/v1/packs", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_refresh_rejects_access_token(client, tokens):
    r = client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert r.status_code == 401
    assert "error" in r.json()


def test_refresh_token_is_not_an_access_token(client, tokens):
    r = client.get("/api/v1/packs", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert r.status_code == 401


def test_refresh_with_garbage(client, db):
    r = client.post("/auth/refresh", json={"refresh_token": "not.a.token"})
    assert r.status_code == 401
    assert r.json()["error"].startswith("Invalid token")


def _bad_headers(user_id: str) -> dict[str, dict[str, str]]:
    header_none = _b64({"alg": "none", "typ": "JWT"})
    now = int(time.time())
    payload = _b64({"sub": user_id, "type": "access", "iat": now, "exp": now + 600})
    return {
        "missing": {},
        "not bearer": {"Authorization": "Basic YWxpY2U6cGFzcw=="},
        "empty bearer": {"Authorization": "Bearer "},
        "malformed": {"Authorization": "Bearer abc.def"},
        "garbage": {"Authorization": "Bearer !!!"},
        "expired": {"Authorization": f"Bearer {_token(user_id, exp_delta=-10)}"},
        "wrong signature": {"Authorization": f"Bearer {_token(user_id, secret='another-secret-' + 'y' * 40)}"},
        "alg none": {"Authorization": f"Bearer {header_none}.{payload}."},
        "alg none with sig": {"Authorization": f"Bearer {header_none}.{payload}.c2ln"},
        "unknown user": {"Authorization": f"Bearer {_token('9999')}"},
        "non-numeric subject": {"Authorization": f"Bearer {_token('alice')}"},
    }


@pytest.mark.parametrize("method,path", PROTECTED)
def test_every_bad_token_is_401(client, user, method, path):
    # the user exists (id 1), so only the token's fault can explain a 401
    for name, headers in _bad_headers("1").items():
        r = client.request(method, path, headers=headers, json={"label": "x"})
        assert r.status_code == 401, (name, r.status_code, r.text)
        body = r.json()
        assert isinstance(body.get("error"), str) and body["error"], name
        assert "Traceback" not in r.text


def test_valid_token_for_same_user_passes(client, user):
    r = client.get("/api/v1/packs", headers={"Authorization": f"Bearer {_token('1')}"})
    assert r.status_code == 200


def test_expired_token_message(client, user):
    r = client.get("/api/v1/packs", headers={"Authorization": f"Bearer {_token('1', exp_delta=-5)}"})
    assert r.json() == {"error": "Token has expired"}
    assert r.headers["www-authenticate"] == "Bearer"


def test_brute_force_is_slowed(client, user, monkeypatch):
    from attune.config import get_settings

    monkeypatch.setattr(get_settings().auth, "login_max_failures", 3)
    bad = {"login": user["login"], "password": "wrong-wrong-wrong"}
    assert [client.post("/auth/login", json=bad).status_code for _ in range(3)] == [401, 401, 401]
    blocked = client.post("/auth/login", json=user)  # even the right password, for a while
    assert blocked.status_code == 429
    assert blocked.json()["error"].startswith("Too many failed logins: try again in")
    assert 1 <= int(blocked.headers["retry-after"]) <= 300
    # an unknown login is counted and refused alike: the answer reveals nothing
    ghost = {"login": "nobody", "password": "wrong-wrong-wrong"}
    assert [client.post("/auth/login", json=ghost).status_code for _ in range(4)] == [401, 401, 401, 429]


def test_success_resets_the_count(client, user, monkeypatch):
    from attune.config import get_settings

    monkeypatch.setattr(get_settings().auth, "login_max_failures", 3)
    bad = {"login": user["login"], "password": "wrong-wrong-wrong"}
    for _ in range(2):
        assert client.post("/auth/login", json=bad).status_code == 401
    assert client.post("/auth/login", json=user).status_code == 200
    for _ in range(2):
        assert client.post("/auth/login", json=bad).status_code == 401
    assert client.post("/auth/login", json=user).status_code == 200
