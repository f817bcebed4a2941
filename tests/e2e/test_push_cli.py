"""Issue 17, item 6: `attune pack push DIR`, `attune pack versions REF`, `attune pack
rollback REF VERSION` against a live server and a real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.archives import pack_files
from tests.conftest import workflow_yaml
from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e


def write_pack(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_push_versions_and_rollback(cli, tmp_path):
    login(cli)
    src = write_pack(tmp_path / "cli_pack", {
        **pack_files("cli_pack", {"deploy.yaml": workflow_yaml("cli_pack.echo", desc="v1")}),
        ".attuneignore": "secret.txt\nworkflows/draft_*\n",
        "secret.txt": "do not ship",
        "workflows/draft_one.yaml": "not: pushed\n",
    })  # fmt: skip
    r = cli("pack", "push", str(src))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "activated" in r.stdout and "cli_pack.deploy" in r.stdout

    (src / "workflows" / "deploy.yaml").write_text(workflow_yaml("cli_pack.echo", desc="v2"))
    r = cli("pack", "push", str(src), "--json")
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)["data"]
    assert second["activated"] and second["plan"]["counts"]["update"] == 1

    r = cli("pack", "versions", "cli_pack", "--json")
    versions = json.loads(r.stdout)["data"]
    assert [v["active"] for v in versions] == [True, False]
    first_id = versions[1]["id"]
    r = cli("pack", "rollback", "cli_pack", str(first_id))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "activated" in r.stdout

    shown = json.loads(cli("pack", "versions", "cli_pack", "--json").stdout)["data"]
    assert next(v for v in shown if v["active"])["id"] == first_id
    # pushing the same files again stores nothing new (the archive is reproducible)
    (src / "workflows" / "deploy.yaml").write_text(workflow_yaml("cli_pack.echo", desc="v1"))
    again = json.loads(cli("pack", "push", str(src), "--json").stdout)["data"]
    assert again["version_id"] == first_id


def test_push_refuses_with_exit_codes(cli, tmp_path):
    login(cli)
    src = write_pack(tmp_path / "cli_bad", {
        **pack_files("cli_bad", {"ok.yaml": workflow_yaml("cli_bad.echo"), "broken.yaml": 'version: "1"\n'}),
        ".attuneignore": "*.txt\n",
        "notes.txt": "left out",
    })  # fmt: skip
    r = cli("pack", "push", str(src))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "refused" in r.stdout
    r = cli("pack", "push", str(src), "--allow-errors")
    assert r.returncode == 1 and "activated" in r.stdout  # activated, with errors: exit 1 as a sync's
    versions = json.loads(cli("pack", "versions", "cli_bad", "--json").stdout)["data"]
    assert len(versions) == 1
    assert cli("pack", "push", str(tmp_path / "nowhere")).returncode == 2
    r = cli("pack", "push", str(src), "--ref", "another_ref")  # pack.yaml names cli_bad: refused
    assert r.returncode == 4 and "another pack's" in r.stderr
    r = cli("pack", "push", str(src), "--no-activate")
    assert r.returncode == 1 and "refused" in r.stdout


def test_a_linked_workflows_folder_is_refused_before_anything_is_sent(cli, tmp_path):
    """Found from outside: the archive left the linked folder out, and its activation
    removed the pack's workflows (exit 0). Now exit 2, nothing sent, the pack as it was."""
    import os

    login(cli)
    src = write_pack(tmp_path / "cli_link", pack_files("cli_link", {"a.yaml": workflow_yaml("cli_link.echo")}))
    assert cli("pack", "push", str(src)).returncode == 0
    moved = tmp_path / "elsewhere"
    (src / "workflows").rename(moved)
    os.symlink(moved, src / "workflows")
    r = cli("pack", "push", str(src))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "'workflows/' is a symbolic link" in r.stderr and "nothing pushed" in r.stderr
    versions = json.loads(cli("pack", "versions", "cli_link", "--json").stdout)["data"]
    assert len(versions) == 1
    shown = json.loads(cli("pack", "show", "cli_link", "--json").stdout)["data"]
    assert [w["ref"] for w in shown["workflows"]] == ["cli_link.a"]
