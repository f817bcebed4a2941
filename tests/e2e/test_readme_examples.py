"""The README's CI/CD script and Python client, run as written against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, workflow_yaml

pytestmark = pytest.mark.e2e


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {marker} -->\n```\w+\n(.*?)\n```", text, re.S)
    assert m, f"README has no {marker} block"
    return m.group(1)


@pytest.fixture
def token(live_server, user) -> str:
    r = httpx.post(f"{live_server}/auth/login", json=user)
    assert r.status_code == 200, r.text
    return r.json()["data"]["access_token"]


def pack_key(live_server: str, token: str, pack: str) -> str:
    """As the README says: an editor key limited to the pack, made by a logged-in user."""
    body = {"name": f"deploy-{pack}", "role": "editor", "packs": [pack]}
    r = httpx.post(f"{live_server}/api/v1/keys", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()["data"]["secret"]


def run_script(tmp_path, live_server, key, pack_dir):
    if not shutil.which("jq") or not shutil.which("curl"):
        pytest.skip("the CI/CD example needs curl and jq")
    script = tmp_path / "deploy-pack.sh"
    script.write_text(readme_block("ci-cd-example"))
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "TOKEN": key, "API_URL": live_server, "PACK_DIR": str(pack_dir),
           "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)


def _pack_dir(tmp_path, ref: str, workflows: dict[str, str]) -> Path:
    from tests.archives import pack_files

    root = tmp_path / ref
    for name, text in pack_files(ref, workflows).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_ci_cd_script_pushes_a_valid_pack(tmp_path, live_server, token):
    root = _pack_dir(tmp_path, "cicd_pack", {"deploy_app.yaml": workflow_yaml("cicd_pack.echo")})
    r = run_script(tmp_path, live_server, pack_key(live_server, token, "cicd_pack"), root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "activated" in r.stdout and "Deployment complete!" in r.stdout
    pack = httpx.get(f"{live_server}/api/v1/packs/cicd_pack", headers={"Authorization": f"Bearer {token}"})
    assert pack.json()["data"]["source"] == "version"
    wf = httpx.get(f"{live_server}/api/v1/workflows/cicd_pack.deploy_app", headers={"Authorization": f"Bearer {token}"})
    assert wf.status_code == 200


def test_ci_cd_script_stops_on_errors(tmp_path, live_server, token):
    root = _pack_dir(tmp_path, "cicd_broken", {"broken.yaml": "tasks:\n  - name: step1\n    action: invalid.action\n"})
    r = run_script(tmp_path, live_server, pack_key(live_server, token, "cicd_broken"), root)
    assert r.returncode == 1
    assert "refused" in r.stdout and "Missing required field: version" in r.stdout
    assert "The same with curl" not in r.stdout  # the CLI's exit 1 stopped the script


def test_ci_cd_script_with_a_key_of_another_pack_deploys_nothing(tmp_path, live_server, token):
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{live_server}/api/v1/packs", json={"ref": "cicd_guarded", "label": "x", "version": "1.0.0"},
               headers=headers)  # fmt: skip
    root = _pack_dir(tmp_path, "cicd_guarded", {"deploy_app.yaml": workflow_yaml("cicd_guarded.echo")})
    r = run_script(tmp_path, live_server, pack_key(live_server, token, "cicd_other"), root)
    assert r.returncode != 0 and "limited to packs cicd_other" in r.stdout + r.stderr, r.stdout + r.stderr
    pack = httpx.get(f"{live_server}/api/v1/packs/cicd_guarded", headers=headers).json()["data"]
    assert pack["version"] == "1.0.0" and pack["source"] == "directory"
    assert httpx.get(f"{live_server}/api/v1/packs/cicd_guarded/versions", headers=headers).json()["data"] == []


def test_python_client_example(tmp_path, live_server, token, packs):
    pytest.importorskip("requests")
    packs.make("py_pack", {"a.yaml": workflow_yaml("py_pack.echo"), "bad.yaml": 'version: "1"\n'})
    httpx.post(
        f"{live_server}/api/v1/packs",
        json={"ref": "py_pack", "label": "x", "version": "1.0.0"},
        headers={"Authorization": f"Bearer {token}"},
    )
    code = readme_block("python-example")
    code = code.replace('API_URL = "http://localhost:8080"', f'API_URL = "{live_server}"')
    code = code.replace('TOKEN = "your_access_token"', f'TOKEN = "{token}"')
    code += "\n\nsync_workflows('py_pack')\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Synced 1 workflows" in r.stdout
    assert "Validation failed for py_pack.bad: Missing required field: tasks" in r.stdout


def test_history_and_plan_example(tmp_path, live_server, token, packs):
    if not shutil.which("jq") or not shutil.which("curl"):
        pytest.skip("the example needs curl and jq")
    root = packs.make("readme_hist", {"deploy_app.yaml": workflow_yaml("readme_hist.echo", desc="first")})
    auth = {"Authorization": f"Bearer {token}"}
    job = httpx.post(f"{live_server}/api/v1/packs", json={"ref": "readme_hist", "label": "x", "version": "1"},
                     headers=auth).json()["job_id"]  # fmt: skip
    for _ in range(600):  # its auto-sync writes revision 1
        if httpx.get(f"{live_server}/api/v1/jobs/{job}", headers=auth).json()["data"]["status"] == "succeeded":
            break
        time.sleep(0.05)
    (root / "workflows" / "deploy_app.yaml").write_text(workflow_yaml("readme_hist.echo", desc="second"))
    script = tmp_path / "plan-then-sync.sh"
    script.write_text(readme_block("history-example"))
    env = {**os.environ, "TOKEN": token, "API_URL": live_server, "PACK_NAME": "readme_hist",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "ATTUNE_CLI_CONFIG": str(tmp_path / "cli.json")}  # fmt: skip
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert json.loads(lines[0]) == {"create": 0, "update": 1, "unchanged": 0, "remove": 0, "error": 0}
    assert "  ~ workflow readme_hist.deploy_app will be updated (revision 2)" in lines
    assert "Plan: 0 to create, 1 to update, 0 to remove, 0 unchanged, 0 with errors." in lines
    assert "2 update by alice" in lines and "1 create by auto" in lines
    assert "-description: first" in lines and "+description: second" in lines
    assert "readme_hist.deploy_app: revision 1 -> 2" in lines

    # a pack with an invalid workflow: the plan stops the script before the sync
    (root / "workflows" / "broken.yaml").write_text("version: '1'\n")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1
    assert "! workflow readme_hist.broken has errors: will not register" in r.stdout
    assert "pack readme_hist:" not in r.stdout  # never synced
