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
    # a second run creates nothing and repeats how to log in
    again = _attune(configured, "user", "bootstrap", "--credentials-file", str(creds))
    assert again.returncode == 0
    assert password in again.stdout


def test_db_upgrade_is_idempotent(configured):
    r = _attune(configured, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert "upgraded to head" in r.stdout
