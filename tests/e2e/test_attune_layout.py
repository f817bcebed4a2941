"""Issue 13 end to end: a pack in Attune's current layout registers its workflows through the
API and a real worker, and what Attune refuses is refused here with the rule named.

The pack is tests/data/attune_pack (each file names the Attune source it follows), copied
into the packs base directory; one other pack registers the actions it calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.test_sync import create_pack, sync

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[1] / "data" / "attune_pack"


def test_attune_layout_pack_registers_through_the_api(worker, client, auth, packs, packs_dir):
    # the actions the corpus calls outside its pack (core.local, ns.other.echo) come from
    # packs registered first: calls resolve across packs, workflows included
    packs.make("core", {}, {"local": "runner_type: shell\n"})
    create_pack(client, auth, "core")
    packs.make("ns", {}, {"echo": "ref: ns.other.echo\nrunner_type: shell\n"})
    create_pack(client, auth, "ns")
    shutil.copytree(CORPUS, packs_dir / "attune_pack")
    create_pack(client, auth, "attune_pack")

    r = sync(client, auth, "attune_pack")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    registered = {w["ref_name"] for w in data["workflows"]}
    assert {
        "attune_pack.deploy",  # actions/deploy.yaml + actions/workflows/deploy.workflow.yaml
        "attune_pack.mismatch",
        "attune_pack.legacy_publish",  # in actions/workflows/ without an action
        "attune_pack.callers",  # calls workflows as actions, dotted names, scalars as strings
        "attune_pack.child",
        "attune_pack.flat_parameters",
    } == registered
    failed = {e.split(":", 1)[0].removeprefix("Validation failed for ") for e in data["errors"]}
    assert failed == {
        "attune_pack.attune_rejects",
        "attune_pack.expressions_attune",
        "attune_pack.iterate_cache_rules",
        "attune_pack.wait_for_rules",
    }
    codes = {ref: {d["code"] for d in diags} for ref, diags in data["error_diagnostics"].items()}
    assert {"type"} <= codes["attune_pack.attune_rejects"]  # scalar do, mapping publish
    assert "expression-syntax" in codes["attune_pack.expressions_attune"]  # Jinja is not Attune's language
    assert "wait-for" in codes["attune_pack.wait_for_rules"]
    assert "iterate-cache" in codes["attune_pack.iterate_cache_rules"]
    assert any(n["code"] == "shadowed-workflow" for n in data["notes"])

    wf = client.get("/api/v1/workflows/attune_pack.deploy", headers=auth).json()["data"]
    assert wf["label"] == "Deploy App"  # from the action file
    assert wf["source_file"] == "actions/workflows/deploy.workflow.yaml"
    wait = wf["definition"]["tasks"][1]
    assert wait["wait_for"] == {"inquiry": "{{ workflow.inquiry_id }}"}
    assert wait["permission_set_refs"] == "deployments.deployer"

    # validate answers the same about the same files
    v = client.post("/api/v1/packs/attune_pack/workflows/validate", headers=auth)
    assert v.status_code == 200, v.text
    vd = v.json()["data"]
    assert vd["validated_count"] == 10
    assert set(vd["errors"]) == failed
