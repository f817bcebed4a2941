"""Issue 14, items 3 to 6: the command line speaks with one voice. Snapshots of what a
user reads (summaries, errors and warnings located alike, no Python reprs, lines never
wrapped in a log), of help and version, and of the login and delete refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from attune import __version__
from tests.conftest import ROOT, workflow_yaml
from tests.e2e.conftest import login as _login

pytestmark = pytest.mark.e2e

BROKEN = "version: '1.0'\ndescription: no tasks here\n"
WARNED = 'version: "1.0"\ncolour: blue\ntasks:\n  - name: only\n    action: voice.echo\n'
LONG = "a_workflow_whose_name_is_long_enough_to_push_every_line_past_eighty_columns"


def _created_and_synced(cli, packs, ref: str) -> None:
    """The pack record made while its folder is empty, its auto-sync done: what follows is deterministic."""
    packs.make(ref, {})
    r = cli("pack", "create", ref, "--json")
    assert r.returncode == 0, r.stderr
    assert cli("job", "show", json.loads(r.stdout)["job_id"], "--wait").returncode == 0


def test_sync_and_validate_summaries(cli, packs):
    _login(cli)
    _created_and_synced(cli, packs, "voice")
    wf = packs.base / "voice" / "workflows"
    (wf / "good.yaml").write_text(workflow_yaml("voice.echo"))
    (wf / "warned.yaml").write_text(WARNED)
    (wf / f"{LONG}.yaml").write_text(BROKEN)

    r = cli("pack", "sync", "voice")
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "pack voice: 3 files, 2 registered (2 new, 0 updated, 0 unchanged), 1 error, 0 removed",
        f"  error workflows/{LONG}.yaml:1:1 missing-field: Missing required field: tasks",
        "  warning workflows/warned.yaml:2:1 unknown-field: Unknown field 'colour' (ignored)",
    ], r.stdout
    # again: the invalid file is an error, not "unchanged"
    r = cli("pack", "sync", "voice")
    assert r.stdout.splitlines()[0] == (
        "pack voice: 3 files, 2 registered (0 new, 0 updated, 2 unchanged), 1 error, 0 removed"
    )
    # --full reads identical files again: nothing changed
    (wf / "good.yaml").write_text(workflow_yaml("voice.echo", desc="edited"))
    r = cli("pack", "sync", "voice", "--full")
    assert r.stdout.splitlines()[0] == (
        "pack voice: 3 files, 2 registered (0 new, 1 updated, 1 unchanged), 1 error, 0 removed"
    )

    r = cli("pack", "validate", "voice")
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        "pack voice: 3 workflows checked, 1 with errors, 1 warning",
        f"  error workflows/{LONG}.yaml:1:1 missing-field: Missing required field: tasks",
        "  warning workflows/warned.yaml:2:1 unknown-field: Unknown field 'colour' (ignored)",
    ], r.stdout

    # --json: the API's answer, envelope and all, for both
    for command, message in (("sync", "Pack workflows synced successfully"), ("validate", "Pack workflows validated")):
        body = json.loads(cli("pack", command, "voice", "--json").stdout)
        assert body["message"] == message and body["data"]["pack_ref"] == "voice"
    synced = json.loads(cli("pack", "sync", "voice", "--json").stdout)["data"]
    assert all(w["ref"] == w["ref_name"] for w in synced["workflows"])


def test_offline_and_server_validate_print_one_shape(cli, packs):
    _login(cli)
    _created_and_synced(cli, packs, "shape")
    wf = packs.base / "shape" / "workflows"
    (wf / "warned.yaml").write_text(WARNED.replace("voice.", "shape."))
    (wf / "broken.yaml").write_text(BROKEN)
    server = json.loads(cli("pack", "validate", "shape", "--json").stdout)
    offline = json.loads(cli("validate", str(packs.base / "shape"), "--format", "json").stdout)
    server["data"]["job_id"] = offline["data"]["job_id"] = None
    assert server == offline


def test_show_prints_no_reprs_and_whole_ids(cli, packs):
    _login(cli)
    _created_and_synced(cli, packs, "shown")
    r = cli("pack", "show", "shown")
    assert r.returncode == 0, r.stderr
    assert "None" not in r.stdout and "['" not in r.stdout and "{'" not in r.stdout
    lines = r.stdout.splitlines()
    assert "description  -" in [line.strip() for line in lines]
    assert "tags  -" in [line.strip() for line in lines]
    jobs = json.loads(cli("pack", "show", "shown", "--json").stdout)["data"]["jobs"]
    assert jobs and all(any(j["id"] in line for line in lines) for j in jobs)  # never folded


def test_errors_are_one_line_in_a_log(cli, packs):
    _login(cli)
    long_ref = "a" + "b" * 90
    r = cli("pack", "show", long_ref)
    assert r.returncode == 4
    assert r.stderr == f"error: Pack '{long_ref}' not found\n"


def test_help_and_version(cli):
    env = {**os.environ, "COLUMNS": "100"}
    for args in (["pack", "show", "--help"], ["validate", "--help"], ["login", "--help"], ["--help"]):
        r = subprocess.run([sys.executable, "-m", "attune_cli.main", *args], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr
        for odd in ("{ref}", "{path}", "<bool>", "<str>", "<list[str]>", "<int>", "<path>"):
            assert odd not in r.stdout, (args, odd, r.stdout)
    r = cli("pack", "show", "--help")
    assert re.search(r"Usage: .*pack show \[OPTIONS\] REF\b", r.stdout), r.stdout
    assert cli("--version").stdout == f"attune {__version__}\n"


def test_login_says_what_is_missing(cli):
    r = cli("login", "--password-stdin", stdin="secret-password\n")
    assert r.returncode == 2
    assert r.stderr == "error: --password-stdin reads the password from stdin: give the login with --user LOGIN\n"
    r = cli("login", "--user", cli.user["login"], "--password-stdin", stdin="")
    assert r.returncode == 2 and r.stderr == "error: no password given (stdin was empty)\n"
    r = cli("login", "--user", cli.user["login"], "--password-stdin", stdin="\n")
    assert r.returncode == 2 and r.stderr == "error: no password given (stdin was empty)\n"


def test_delete_checks_login_and_pack_before_asking(cli, packs):
    r = cli("pack", "delete", "anything", stdin="")
    assert r.returncode == 3 and "Delete pack" not in r.stdout + r.stderr and "attune login" in r.stderr
    _login(cli)
    r = cli("pack", "delete", "nope", stdin="")
    assert r.returncode == 4 and "Delete pack" not in r.stdout and r.stderr == "error: Pack 'nope' not found\n"
    _created_and_synced(cli, packs, "doomed")
    r = cli("pack", "delete", "doomed", stdin="n\n")
    assert r.returncode == 1 and "Delete pack doomed and its workflows?" in r.stdout
    assert cli("pack", "show", "doomed").returncode == 0
    r = cli("pack", "delete", "doomed", stdin="y\n")
    assert r.returncode == 0 and cli("pack", "show", "doomed").returncode == 4
