"""Issue 14, item 2: every shell block of the README is run by the suite, or marked as not
runnable here with the reason. Each block has a marker comment just before it:
``<!-- ID: ... -->`` where ID names the test that runs it, or ``<!-- not-run: reason -->``.

The blocks are run as written, in bash with ``set -euo pipefail`` and curl failing on
an HTTP error (``--fail-with-body``), so that a command that fails as written (an
unquoted ``&``, an unset variable, a refused request) fails here. Only the server's URL
and the example's password are replaced."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, workflow_yaml

pytestmark = pytest.mark.e2e

SHELL_BLOCK = re.compile(
    r"(?:<!-- (?P<marker>[^\n]*?) -->\n)?```(?P<lang>sh|bash|shell|console)\n(?P<body>.*?)\n```", re.S
)
# marker id -> the test file that runs the block
RUN_BY = {
    "quickstart-commands": "tests/e2e/test_quickstart.py",
    "quickstart-error": "tests/e2e/test_quickstart.py",
    "ci-cd-example": "tests/e2e/test_readme_examples.py",
    "history-example": "tests/e2e/test_readme_examples.py",
    "http-examples": "tests/e2e/test_readme_shell.py",
    "sync-examples": "tests/e2e/test_readme_shell.py",
    "offline-validate": "tests/e2e/test_readme_shell.py",
    "production": "tests/e2e/test_readme_shell.py",
    "access-example": "tests/e2e/test_readme_shell.py",
}
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def shell_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    return [(m.group("marker") or "", m.group("body")) for m in SHELL_BLOCK.finditer(text)]


def block(marker_id: str) -> str:
    found = [body for marker, body in shell_blocks() if marker.split(":")[0] == marker_id]
    assert len(found) == 1, f"README has {len(found)} blocks marked {marker_id}"
    return found[0]


def test_every_shell_block_is_run_or_says_why_not():
    blocks = shell_blocks()
    assert len(blocks) >= 8
    for marker, body in blocks:
        marker_id, _, reason = marker.partition(":")
        if marker_id == "not-run":
            assert len(reason.strip()) >= 20, f"a not-run block needs its reason:\n{body}"
            continue
        assert marker_id in RUN_BY, f"shell block without a known marker ({marker!r}):\n{body}"
        assert marker_id in (ROOT / RUN_BY[marker_id]).read_text(), (marker_id, RUN_BY[marker_id])


def run_block(body: str, *, env: dict[str, str], cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    if not shutil.which("jq") or not shutil.which("curl"):
        pytest.skip("the README's examples need curl and jq (Debian packages curl, jq)")
    return subprocess.run(["bash", "-c", PRELUDE + prelude + body], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=180)  # fmt: skip


def _env(live_server: str, **extra: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def _served(body: str, live_server: str, user: dict[str, str]) -> str:
    body = body.replace("http://localhost:8080", live_server)
    return body.replace('"login": "admin", "password": "..."', json.dumps(user)[1:-1])


def test_http_examples(live_server, user, packs, tmp_path):
    packs.make("hello", {"greet.yaml": workflow_yaml("hello.echo")})  # the pack.yaml example
    body = block("http-examples")
    r = run_block(_served(body, live_server, user), env=_env(live_server), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    token = httpx.post(f"{live_server}/auth/login", json=user).json()["data"]["access_token"]
    hello = httpx.get(f"{live_server}/api/v1/packs/hello", headers={"Authorization": f"Bearer {token}"})
    assert hello.json()["data"]["label"] == "hello"  # from its pack.yaml
    assert (
        httpx.get(f"{live_server}/api/v1/packs/my_pack", headers={"Authorization": f"Bearer {token}"}).status_code
        == 404
    )


def test_sync_examples(live_server, user, packs, tmp_path):
    token = httpx.post(f"{live_server}/auth/login", json=user).json()["data"]["access_token"]
    packs.make("my_pack", {"deploy_app.yaml": workflow_yaml("my_pack.echo", tags="deploy")})
    created = httpx.post(f"{live_server}/api/v1/packs", json={"ref": "my_pack"},
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert created.status_code == 201, created.text
    r = run_block(_served(block("sync-examples"), live_server, user), env=_env(live_server, TOKEN=token), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"ref":"my_pack.deploy_app"' in r.stdout.replace(" ", "")


def test_access_example(live_server, user, packs, tmp_path):
    """The pipeline with a key limited to my_pack: it syncs my_pack, is refused on another
    pack, and is revoked at the end; the jobs name the key."""
    token = httpx.post(f"{live_server}/auth/login", json=user).json()["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    packs.make("my_pack", {"deploy_app.yaml": workflow_yaml("my_pack.echo")})
    packs.make("other_pack", {"deploy_app.yaml": workflow_yaml("other_pack.echo")})
    for ref in ("my_pack", "other_pack"):
        if httpx.get(f"{live_server}/api/v1/packs/{ref}", headers=headers).status_code == 404:
            assert httpx.post(f"{live_server}/api/v1/packs", json={"ref": ref}, headers=headers).status_code == 201
    env = _env(live_server, ATTUNE_CLI_CONFIG=str(tmp_path / "cli.json"), ATTUNE_SERVER=live_server)
    env.pop("ATTUNE_TOKEN", None)
    login = subprocess.run([sys.executable, "-m", "attune_cli.main", "login", "--user", user["login"],
                            "--password-stdin"], input=user["password"] + "\n", capture_output=True, text=True,
                           env=env, cwd=tmp_path)  # fmt: skip
    assert login.returncode == 0, login.stderr
    r = run_block(block("access-example"), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "key:deploy-my_pack#" in r.stdout
    assert "limited to packs my_pack: not 'other_pack'" in r.stderr
    keys = httpx.get(f"{live_server}/api/v1/keys", headers=headers).json()["data"]
    mine = [k for k in keys if k["name"] == "deploy-my_pack"]
    assert mine and all(k["revoked_at"] for k in mine) and mine[0]["packs"] == ["my_pack"]
    assert "atk_" not in r.stdout  # the secret was printed once, into DEPLOY_KEY


def test_offline_validate_example(tmp_path):
    pack = tmp_path / "packs" / "my_pack"
    (pack / "workflows").mkdir(parents=True)
    (pack / "actions").mkdir()
    (pack / "actions" / "echo.yaml").write_text("runner_type: shell\nentry_point: echo.sh\n")
    (pack / "workflows" / "deploy.yaml").write_text(workflow_yaml("my_pack.echo"))
    r = run_block(block("offline-validate"), env=_env(""), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"error_count": 0' in r.stdout and "my_pack: 1 workflows checked, 0 with errors" in r.stdout


def test_production_example(configured, db, live_server, tmp_path):
    """Docker cannot run here: a stand-in `docker` runs the `docker compose exec -T api ...`
    command itself against the test database; `compose up` is checked by test_compose.py."""
    if not shutil.which("openssl"):
        pytest.skip("the example needs openssl")
    stand_in = """docker() {
  case "$*" in
    "compose up -d --scale worker=4") echo "compose up: not here" ;;
    "compose exec -T api "*) shift 4; "$@" ;;
    *) echo "unexpected: docker $*" >&2; return 1 ;;
  esac
}
"""
    r = run_block(block("production"), env=_env("", **configured), cwd=ROOT, prelude=stand_in)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "created user 'admin'" in r.stdout
    password = r.stdout.split("admin's password: ")[1].strip()
    login = httpx.post(f"{live_server}/auth/login", json={"login": "admin", "password": password})
    assert login.status_code == 200, login.text
