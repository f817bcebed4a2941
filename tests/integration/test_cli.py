"""The attune command against the test database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from tests.conftest import ROOT


def _attune(configured, *args, stdin: str = "", cwd=ROOT):
    env = {**os.environ, **configured}
    return subprocess.run(
        [sys.executable, "-m", "attune_cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_user_create_then_login(configured, db, client):
    r = _attune(configured, "user", "create", "carol", "--password-stdin", stdin="a-long-password\n")
    assert r.returncode == 0, r.stderr
    assert "created user 'carol'" in r.stdout
    login = client.post("/auth/login", json={"login": "carol", "password": "a-long-password"})
    assert login.status_code == 200


def _role(login: str) -> str:
    from attune.db.engine import session_scope
    from attune.users.service import get_user

    with session_scope() as s:
        return get_user(s, login).role


def test_user_create_without_role_is_an_admin_and_roles_change(configured, db, client):
    """Tools outside the repository rely on `attune user create LOGIN --password-stdin` giving
    every right: without --role it still makes an admin."""
    assert _attune(configured, "user", "create", "root", "--password-stdin", stdin="a-long-password\n").returncode == 0
    assert _role("root") == "admin"
    r = _attune(configured, "user", "create", "vic", "--role", "viewer", "--password-stdin", stdin="a-long-password\n")
    assert r.returncode == 0 and "viewer" in r.stdout, r.stderr
    token = client.post("/auth/login", json={"login": "vic", "password": "a-long-password"}).json()["data"]
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    denied = client.post("/api/v1/packs", json={"ref": "nope"}, headers=headers)
    assert denied.status_code == 403 and "'editor' role" in denied.json()["error"]
    r = _attune(configured, "user", "role", "vic", "editor")
    assert r.returncode == 0 and "'vic' is now editor" in r.stdout, r.stderr
    assert client.post("/api/v1/packs", json={"ref": "nope"}, headers=headers).status_code != 403  # same token
    assert _attune(configured, "user", "role", "vic", "owner").returncode == 2  # not a role
    assert _attune(configured, "user", "role", "nobody", "viewer").returncode == 1


def test_user_create_duplicate_fails(configured, db):
    assert _attune(configured, "user", "create", "dave", "--password-stdin", stdin="password-1\n").returncode == 0
    r = _attune(configured, "user", "create", "dave", "--password-stdin", stdin="password-2\n")
    assert r.returncode == 1
    assert "already exists" in r.stderr


def test_user_create_short_password(configured, db):
    r = _attune(configured, "user", "create", "erin", "--password-stdin", stdin="short\n")
    assert r.returncode == 1
    assert "at least 8" in r.stderr


def test_bootstrap_creates_first_user_once(configured, db, client, tmp_path):
    creds = tmp_path / "creds.txt"
    r = _attune(configured, "user", "bootstrap", "--credentials-file", str(creds))
    assert r.returncode == 0, r.stderr
    assert "First user created: login 'admin'" in r.stdout
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    password = r.stdout.split("password '")[1].split("'")[0]
    assert client.post("/auth/login", json={"login": "admin", "password": password}).status_code == 200
    assert "change it with: attune user password admin" in r.stdout
    # a second run creates nothing, says so, and does not print the password again
    again = _attune(configured, "user", "bootstrap", "--credentials-file", str(creds))
    assert again.returncode == 0
    assert "First user created" not in again.stdout and password not in again.stdout
    assert again.stdout == (
        f"Users exist already: log in with yours (the first user's password is in {creds}): attune login --user LOGIN\n"
        "(attune user create LOGIN adds a user; attune user password LOGIN changes a password)\n"
    )


def test_user_password_changes_it(configured, db, client):
    assert _attune(configured, "user", "create", "frank", "--password-stdin", stdin="first-password\n").returncode == 0
    r = _attune(configured, "user", "password", "frank", "--password-stdin", stdin="second-password\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "password of 'frank' changed\n"
    assert client.post("/auth/login", json={"login": "frank", "password": "first-password"}).status_code == 401
    assert client.post("/auth/login", json={"login": "frank", "password": "second-password"}).status_code == 200
    r = _attune(configured, "user", "password", "nobody", "--password-stdin", stdin="second-password\n")
    assert r.returncode == 1 and r.stderr == "error: User 'nobody' not found\n"
    r = _attune(configured, "user", "password", "frank", "--password-stdin", stdin="short\n")
    assert r.returncode == 1 and "at least 8" in r.stderr


def test_db_upgrade_is_idempotent(configured):
    r = _attune(configured, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert "upgraded to head" in r.stdout
