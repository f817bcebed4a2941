"""Refresh token rotation, replay detection and logout, through HTTP."""

from __future__ import annotations

import threading

import jwt

from tests.conftest import TEST_SECRET

REUSED = "Refresh token already used: the session it belongs to is revoked, log in again"


def _refresh(client, token: str):
    return client.post("/auth/refresh", json={"refresh_token": token})


def _can_read(client, access: str) -> bool:
    return client.get("/api/v1/packs", headers={"Authorization": f"Bearer {access}"}).status_code == 200


def test_each_refresh_returns_a_new_refresh_token_and_retires_the_old(client, tokens):
    first = tokens["refresh_token"]
    r = _refresh(client, first)
    assert r.status_code == 200, r.text
    second = r.json()["data"]
    assert set(second) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert second["refresh_token"] != first
    assert _can_read(client, second["access_token"])
    # a chain: every new one works once
    r = _refresh(client, second["refresh_token"])
    assert r.status_code == 200
    third = r.json()["data"]["refresh_token"]
    assert len({first, second["refresh_token"], third}) == 3


def test_replaying_a_retired_refresh_token_revokes_its_family(client, tokens):
    old = tokens["refresh_token"]
    new = _refresh(client, old).json()["data"]["refresh_token"]
    r = _refresh(client, old)  # the thief (or the victim) replays the retired one
    assert r.status_code == 401
    assert r.json() == {"error": REUSED}
    assert r.headers["www-authenticate"] == "Bearer"
    # the whole family is gone: the token issued in exchange too, and its successor
    r = _refresh(client, new)
    assert r.status_code == 401 and r.json()["error"] == "Refresh token revoked: log in again"
    assert _refresh(client, old).status_code == 401


def test_replay_revokes_only_that_session(client, user):
    a = client.post("/auth/login", json=user).json()["data"]
    b = client.post("/auth/login", json=user).json()["data"]
    _refresh(client, a["refresh_token"])
    assert _refresh(client, a["refresh_token"]).status_code == 401
    r = _refresh(client, b["refresh_token"])  # another login of the same user is untouched
    assert r.status_code == 200


def test_concurrent_refreshes_with_one_token_one_wins_then_the_family_is_revoked(client, tokens):
    token = tokens["refresh_token"]
    results: list = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        results.append(_refresh(client, token))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [401] * 7, [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()["data"]["refresh_token"]
    # at least one loser saw the token used, so the winner's new token is revoked as well
    assert _refresh(client, winner).status_code == 401


def test_logout_with_the_refresh_token(client, tokens):
    r = client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"revoked": True}, "message": "Logged out"}
    assert _refresh(client, tokens["refresh_token"]).json()["error"] == "Refresh token revoked: log in again"
    r = client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})  # again: nothing left
    assert r.status_code == 200 and r.json()["data"] == {"revoked": False}


def test_logout_with_the_access_token_ends_its_session(client, user, tokens, auth):
    other = client.post("/auth/login", json=user).json()["data"]
    rotated = _refresh(client, tokens["refresh_token"]).json()["data"]
    r = client.post("/auth/logout", headers=auth)  # the access token of before the rotation: same session
    assert r.status_code == 200 and r.json()["data"] == {"revoked": True}
    assert _refresh(client, rotated["refresh_token"]).status_code == 401
    assert _refresh(client, other["refresh_token"]).status_code == 200  # the other login goes on
    # the session's access tokens stop too, before they expire; the other login's go on
    r = client.get("/api/v1/packs", headers=auth)
    assert r.status_code == 401 and "Session ended" in r.json()["error"]
    assert (
        client.get("/api/v1/packs", headers={"Authorization": f"Bearer {rotated['access_token']}"}).status_code == 401
    )
    assert client.get("/api/v1/packs", headers={"Authorization": f"Bearer {other['access_token']}"}).status_code == 200


def test_logout_needs_a_valid_token(client, tokens):
    assert client.post("/auth/logout").status_code == 401
    assert client.post("/auth/logout", json={}).status_code == 401
    forged = jwt.encode({"sub": "1", "type": "refresh", "iat": 1, "exp": 2**33, "sid": "x"}, "wrong-" * 8)
    assert client.post("/auth/logout", json={"refresh_token": forged}).status_code == 401
    # an access token is not a refresh token
    assert client.post("/auth/logout", json={"refresh_token": tokens["access_token"]}).status_code == 401
    assert _refresh(client, tokens["refresh_token"]).status_code == 200  # nothing was revoked


def test_refresh_token_without_a_row_is_refused(client, tokens):
    """A well-signed refresh token the server never issued (or issued before rotation
    existed) is refused: only stored tokens can be exchanged."""
    claims = jwt.decode(tokens["refresh_token"], TEST_SECRET, algorithms=["HS256"])
    stranger = jwt.encode({**claims, "jti": "f" * 32}, TEST_SECRET, algorithm="HS256")
    r = _refresh(client, stranger)
    assert r.status_code == 401 and "unknown refresh token" in r.json()["error"]
    legacy = jwt.encode({k: v for k, v in claims.items() if k not in ("jti", "sid")}, TEST_SECRET, algorithm="HS256")
    assert _refresh(client, legacy).status_code == 401


def test_a_token_issued_while_a_logout_ended_its_session_is_refused(client, tokens):
    """The state a logout racing an exchange leaves (found from outside: 4 times in 20): the
    logout revoked the family's rows it could see, while the exchange stored the next token,
    which no revocation saw. That token must not refresh (it did: 200, and again after)."""
    from sqlalchemy import update

    from attune.auth.models import RefreshToken
    from attune.db.engine import session_scope

    first = tokens["refresh_token"]
    second = _refresh(client, first).json()["data"]["refresh_token"]
    first_id = jwt.decode(first, TEST_SECRET, algorithms=["HS256"])["jti"]
    second_id = jwt.decode(second, TEST_SECRET, algorithms=["HS256"])["jti"]
    with session_scope() as s:  # the logout's UPDATE, before the exchange's row was visible to it
        s.execute(update(RefreshToken).where(RefreshToken.id == first_id).values(revoked_at=RefreshToken.used_at))
    r = _refresh(client, second)
    assert r.status_code == 401 and r.json()["error"] == "Refresh token revoked: log in again"
    with session_scope() as s:  # the whole family is revoked now, that token included
        assert s.get(RefreshToken, second_id).revoked_at is not None


def _logout_and_refresh_at_once(client, token: str) -> dict:
    answers: dict = {}
    barrier = threading.Barrier(2)

    def logout() -> None:
        barrier.wait()
        answers["logout"] = client.post("/auth/logout", json={"refresh_token": token})

    def refresh() -> None:
        barrier.wait()
        answers["refresh"] = _refresh(client, token)

    threads = [threading.Thread(target=logout), threading.Thread(target=refresh)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_logout_racing_a_refresh_leaves_no_token_that_refreshes(client, user):
    """Logout and refresh of one token at once, many times: whatever each answers, no
    refresh token of the session works afterwards."""
    for _ in range(12):
        pair = client.post("/auth/login", json=user).json()["data"]
        got = _logout_and_refresh_at_once(client, pair["refresh_token"])["refresh"]
        if got.status_code == 200:
            later = _refresh(client, got.json()["data"]["refresh_token"])
            assert later.status_code == 401, later.text
