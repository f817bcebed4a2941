"""The `attune` command line as a client of a live server: login, pack commands, readable
and --json output, and the exit codes CI pipelines rely on."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port, workflow_yaml
from tests.e2e.conftest import login as _login

pytestmark = pytest.mark.e2e

BROKEN = "version: '1.0'\ndescription: no tasks here\n"


def test_login_keeps_the_token_private_and_bad_credentials_exit_3(cli):
    r = cli("pack", "list")
    assert r.returncode == 3 and "attune login" in r.stderr  # not logged in yet
    r = cli("login", "--user", cli.user["login"], "--password-stdin", stdin="wrong password\n")
    assert r.returncode == 3 and "Invalid login or password" in r.stderr
    assert not cli.config.exists()
    _login(cli)
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert json.loads(cli.config.read_text())["servers"]  # the token pair is kept
    r = cli("logout")
    assert r.returncode == 0
    assert cli("pack", "list").returncode == 3


def test_pack_commands_tables_json_and_exit_codes(cli, packs):
    packs.make("clip", {"good.yaml": workflow_yaml("clip.echo"), "broken.yaml": BROKEN})
    _login(cli)
    r = cli("pack", "create", "clip", "--label", "CLI pack", "--tag", "ci")
    assert r.returncode == 0, r.stderr
    assert "Pack created" in r.stdout

    r = cli("pack", "list")
    assert r.returncode == 0 and "clip" in r.stdout and "CLI pack" in r.stdout
    listed = json.loads(cli("pack", "list", "--json").stdout)
    assert [p["ref"] for p in listed["data"]] == ["clip"]

    # validate and sync find the broken file: exit 1, with the file and line named
    r = cli("pack", "validate", "clip")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 with errors" in r.stdout and "workflows/broken.yaml" in r.stdout
    r = cli("pack", "validate", "clip", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["data"]["error_count"] == 1
    r = cli("pack", "sync", "clip")
    assert r.returncode == 1
    assert "1 registered" in r.stdout and "1 error," in r.stdout and "broken.yaml" in r.stdout
    r = cli("pack", "sync", "clip", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["data"]["registered_count"] == 1

    # fixed: exit 0
    (packs.base / "clip" / "workflows" / "broken.yaml").unlink()
    r = cli("pack", "sync", "clip")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 registered" in r.stdout and "0 errors" in r.stdout
    assert cli("pack", "validate", "clip").returncode == 0

    r = cli("pack", "show", "clip")
    assert r.returncode == 0 and "clip.good" in r.stdout
    shown = json.loads(cli("pack", "show", "clip", "--json").stdout)["data"]
    assert shown["pack"]["tags"] == ["ci"] and [w["ref"] for w in shown["workflows"]] == ["clip.good"]

    r = cli("pack", "update", "clip", "--version", "2.0.0")
    assert r.returncode == 0 and "2.0.0" in r.stdout
    assert cli("pack", "update", "clip").returncode == 2  # nothing to update
    assert cli("pack", "update", "clip", "--meta", "{not json").returncode == 2

    # refused requests exit 4
    r = cli("pack", "show", "nope")
    assert r.returncode == 4 and "Pack 'nope' not found" in r.stderr
    assert cli("pack", "create", "clip").returncode == 4  # exists already: 409
    assert cli("pack", "create", "Bad/Ref").returncode == 4  # 422
    assert cli("pack", "sync", "nope").returncode == 4

    r = cli("pack", "delete", "clip", "--yes")
    assert r.returncode == 0
    assert cli("pack", "show", "clip").returncode == 4


def test_job_wait_timeout_exits_6(cli, packs):
    packs.make("slow", {f"w{i:04d}.yaml": workflow_yaml("slow.echo", desc=f"wf {i}") for i in range(1500)})
    _login(cli)
    parked = packs.base / "slow_parked"
    (packs.base / "slow").rename(parked)  # created empty: the sync below does the work
    r = cli("pack", "create", "slow", "--label", "Slow", "--version", "1.0.0", "--json")  # no pack.yaml to read
    assert r.returncode == 0
    job_id = json.loads(r.stdout)["job_id"]
    assert cli("job", "show", job_id, "--wait").returncode == 0
    parked.rename(packs.base / "slow")
    r = cli("pack", "sync", "slow", "--timeout", "0")
    assert r.returncode == 6, r.stdout + r.stderr
    assert "attune job show" in r.stderr
    job_id = r.stderr.split("attune job show ")[1].split("`")[0]
    r = cli("job", "show", job_id, "--wait", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["data"]["status"] == "succeeded"


def test_unreachable_server_exits_5(cli):
    cli.config.write_text(json.dumps({"servers": {}}))
    dead = f"http://127.0.0.1:{free_port()}"
    r = cli("login", "--server", dead, "--user", "x", "--password-stdin", stdin="y\n")
    assert r.returncode == 5 and "Cannot reach" in r.stderr


def test_server_messages_keep_their_brackets_and_a_revoked_key_says_to_make_a_new_one(cli, tmp_path):
    """Found from outside: the CLI read the server's errors as markup ('^[a-z][a-z0-9_-]*$'
    printed as '^*$'), and a revoked API key was told to run `attune login` again."""
    _login(cli)
    r = cli("key", "create", "k", "--role", "viewer", "--pack", "BAD")
    assert r.returncode == 4, r.stderr
    assert "[a-z]" in r.stderr, r.stderr
    made = json.loads(cli("key", "create", "ci", "--role", "viewer", "--json").stdout)["data"]
    assert cli("key", "revoke", str(made["id"])).returncode == 0
    env = {**os.environ, "ATTUNE_CLI_CONFIG": str(tmp_path / "none.json"), "ATTUNE_TOKEN": made["secret"],
           "ATTUNE_SERVER": json.loads((tmp_path / "cli.json").read_text())["server"]}  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "attune_cli.main", "pack", "list"], capture_output=True, text=True, env=env,
                cwd=ROOT, timeout=120)  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert "API key revoked" in r.stderr and "make a new API key" in r.stderr and "attune login" not in r.stderr
