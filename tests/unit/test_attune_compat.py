"""Real Attune packs load as Attune loads them (issue 13).

tests/data/attune_pack is a pack in Attune's action-linked layout (actions/<name>.yaml with
workflow_file, the graph in actions/workflows/<name>.workflow.yaml) beside the classic one
(workflows/<name>.yaml). Each file names the Attune source it follows and states its
diagnostics with ``# expect:`` lines, as tests/data/corpus does. The Attune sources cited
are those of attune-system/attune (mirrored as AndroxxTraxxon/attune).
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from attune.workflows.checker import Known, check_pack, check_workflow
from attune.workflows.diagnostics import render_path
from attune.workflows.expressions import analyse_template, expression_error
from attune.workflows.loader import Selection, list_workflow_files, load_pack_dir, load_workflows
from attune.workflows.offline import validate_path
from tests.expectations import expected as _expected

PACK = Path(__file__).resolve().parents[1] / "data" / "attune_pack"
ELSEWHERE = {"core.local", "ns.other.echo"}  # actions other packs registered
FILES = sorted(
    str(p.relative_to(PACK))
    for p in [*PACK.glob("workflows/*.y*ml"), *PACK.glob("actions/workflows/*.y*ml")]
    if p.name != "deploy.yaml"  # shadowed by actions/workflows/deploy.workflow.yaml
)


@pytest.fixture(scope="module")
def report():
    return check_pack(load_pack_dir(PACK, "attune_pack"), known_actions=ELSEWHERE)


def _wf(report, file: str):
    return next(w for w in report.workflows if w.file == file)


def test_every_file_states_expectations():
    for name in FILES:
        assert "# expect:" in (PACK / name).read_text(), name


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(report, name):
    result = _wf(report, name)
    got = [(d.severity, d.code, d.line, d.column, d.message) for d in result.diagnostics]
    assert sorted(got) == sorted(_expected(PACK / name))
    assert result.ok is not any(d.is_error for d in result.diagnostics)
    assert all(d.file == name for d in result.diagnostics)


def test_both_layouts_are_read_with_attunes_names_and_precedence(report):
    # loader.rs lines 127-130 (both folders, actions/workflows/ last, so it wins a clash) and
    # line 314 (".workflow" stripped from the file name)
    refs = {w.ref: w.file for w in report.workflows}
    assert refs["attune_pack.deploy"] == "actions/workflows/deploy.workflow.yaml"
    assert refs["attune_pack.legacy_publish"] == "actions/workflows/legacy_publish.yaml"
    assert refs["attune_pack.callers"] == "workflows/callers.yaml"
    assert "workflows/deploy.yaml" not in {w.file for w in report.workflows}
    [note] = [n for n in report.notes if n.code == "shadowed-workflow"]
    assert note.file == "workflows/deploy.yaml" and not note.is_error
    # the chunked path lists and selects the same files, by their path in the pack
    listed = list_workflow_files(PACK)
    assert listed == [w.file for w in report.workflows]
    one = load_workflows(PACK, "attune_pack", selection=Selection(only={"actions/workflows/deploy.workflow.yaml"}))
    assert [f.ref for f in one.workflows] == ["attune_pack.deploy"]


def test_the_action_file_supplies_ref_label_description_parameters(report):
    # pack_registry/loader.rs (mirror) lines 1606-1643: the action's label, description and
    # tags fill in; its parameters and output win; flat schemas become JSON Schema.
    d = _wf(report, "actions/workflows/deploy.workflow.yaml").definition
    assert d["ref"] == "attune_pack.deploy"
    assert d["label"] == "Deploy App"
    assert d["description"] == "Validate, approve and deploy an app"
    assert d["tags"] == ["workflow", "deployment"]
    assert d["parameters"] == {
        "type": "object",
        "properties": {
            "app_name": {"type": "string"},
            "regions": {"type": "array", "items": {"type": "string"}},
            "approver": {"type": "integer"},
        },
        "required": ["app_name", "regions"],
    }
    assert d["output"] == {"type": "object", "properties": {"status": {"type": "string"}}}
    m = _wf(report, "actions/workflows/mismatch.workflow.yaml")
    assert m.definition["label"] == "From the workflow file"
    assert m.definition["parameters"]["properties"] == {"target": {"type": "string"}}
    assert all("actions/mismatch.yaml" in d.message for d in m.warnings if d.code == "link-mismatch")


def test_todays_task_fields_are_kept_in_the_stored_definition(report):
    tasks = _wf(report, "actions/workflows/deploy.workflow.yaml").definition["tasks"]
    first, wait, cache = tasks
    assert first["__chart_meta__"] == {"x": 10, "y": 20}
    assert first["next"][0]["__chart_meta__"] == {"color": "green"}
    assert first["trace_tag_template"] == "deploy-{{ parameters.app_name }}"
    assert wait["wait_for"] == {"inquiry": "{{ workflow.inquiry_id }}"}
    assert wait["permission_set_refs"] == "deployments.deployer"  # the alias, stored under its name
    assert wait["worker_selector"] == {"region": "{{ item }}"}
    assert wait["worker_tolerations"] == [{"key": "gpu"}]
    assert wait["timeout"] == "{{ parameters.approver }}"
    assert cache["iterate_cache"] == {
        "namespace": "regions-{{ parameters.app_name }}",
        "owner_type": "pack",
        "generation": "active",
        "page_size": 50,
        "require_fresh": True,
    }


def test_legacy_task_level_publish_moves_onto_the_success_transition(report):
    # parser.rs lines 379-399 (normalize_transitions)
    r = _wf(report, "actions/workflows/legacy_publish.yaml")
    fetch = r.definition["tasks"][0]
    assert fetch["next"] == [{"when": "{{ succeeded() }}", "publish": [{"payload": "{{ result() }}"}], "do": ["done"]}]
    assert "publish" not in fetch
    assert [d.code for d in r.warnings] == ["legacy-transition", "legacy-transition"]


def test_refs_names_and_scalars_as_attune_reads_them(report):
    r = _wf(report, "workflows/callers.yaml")
    assert r.ok, r.diagnostics
    d = r.definition
    assert d["version"] == "1.10"  # the file's text, not the float 1.1
    assert [t["name"] for t in d["tasks"]] == ["Send Email", "step.2", "3"]
    assert d["tasks"][1]["next"] == [{"publish": [], "do": ["3"]}]
    assert d["tasks"][2]["action"] == "ns.other.echo"


def test_workflows_are_actions_in_other_packs_too(tmp_path):
    pack = tmp_path / "caller"
    (pack / "actions" / "workflows").mkdir(parents=True)
    (pack / "actions" / "workflows" / "main.workflow.yaml").write_text(
        'version: "1"\ntasks:\n  - name: a\n    action: other.flow\n'
    )
    files = load_pack_dir(pack, "caller")
    assert not check_pack(files).workflows[0].ok  # nothing named other.flow
    report = check_pack(files, known_workflows={"other.flow"})  # a workflow another pack registered
    assert report.workflows[0].ok, report.workflows[0].diagnostics


def test_a_linked_action_whose_ref_differs_is_named(tmp_path):
    pack = tmp_path / "p"
    (pack / "actions" / "workflows").mkdir(parents=True)
    (pack / "actions" / "run.yaml").write_text("ref: p.run_it\nworkflow_file: workflows/run.workflow.yaml\n")
    (pack / "actions" / "workflows" / "run.workflow.yaml").write_text(
        'version: "1"\ntasks:\n  - {name: a, action: core.local}\n'
    )
    (pack / "actions" / "lost.yaml").write_text("ref: p.lost\nworkflow_file: workflows/nowhere.yaml\n")
    report = check_pack(load_pack_dir(pack, "p"), known_actions={"core.local"})
    [w] = report.workflows
    assert w.ok
    [mismatch] = [d for d in w.warnings if d.code == "link-mismatch"]
    assert "actions/run.yaml" in mismatch.message and "p.run_it" in mismatch.message
    assert w.file == "actions/workflows/run.workflow.yaml"
    [lost] = [n for n in report.notes if n.code == "workflow-file"]
    assert lost.file == "actions/lost.yaml" and "actions/workflows/nowhere.yaml" in lost.message


def test_offline_validate_reads_a_pack_without_workflows_folder(tmp_path):
    # the old checker answered exit 2 "has no workflows/ directory" for Attune's layout
    pack = tmp_path / "attune_pack"
    shutil.copytree(PACK, pack)
    shutil.rmtree(pack / "workflows")
    out, err = io.StringIO(), io.StringIO()
    code = validate_path(pack, output_format="json", known_actions=ELSEWHERE, out=out, err=err)
    assert err.getvalue() == ""
    doc = json.loads(out.getvalue())["data"]  # the shape the server's validate answers
    # the three workflows of actions/workflows/: deploy, legacy_publish, mismatch
    assert doc["validated_count"] == 3
    # deploy.workflow.yaml calls attune_pack.child, a workflow no longer in the pack
    assert code == 1
    assert set(doc["errors"]) == {"attune_pack.deploy"} and doc["error_count"] == 1
    assert {"attune_pack.legacy_publish", "attune_pack.mismatch"} <= set(doc["diagnostics"])  # warnings only


def test_flat_parameters_are_normalised_with_a_warning(report):
    r = _wf(report, "workflows/flat_parameters.yaml")
    assert r.definition["parameters"] == {
        "type": "object",
        "properties": {"url": {"type": "string"}, "retries": {"type": "integer", "default": 3}},
        "required": ["url"],
    }
    assert [d.code for d in r.diagnostics] == ["flat-schema"]


def _check(text: str):
    return check_workflow(text.encode(), file="workflows/w.yaml", pack_ref="p", name="w", known=Known({"p.act"}))


# Attune's expression language: expression/parser.rs and tokenizer.rs (mirror) and the bare
# names of expression_validator.rs line 331.
PARSES = [
    ("2 + 3 * 4 - -1", set()),
    ("parameters.n > 3 and not failed()", {"parameters"}),
    ("not a == b", {"a", "b"}),
    ("x in [1, 2, 3,]", {"x"}),
    ("result().data[0]['name']", set()),
    ("task.fetch.result.data", {"task"}),
    ("length(items) >= 1 or true", {"items"}),
    ("(f)(x)", {"x"}),  # a group of one name stays callable (parser.rs parse_postfix)
    ('"it\\"s" == \'x\'', set()),
    ("a.and.or.not.in.true", {"a"}),  # keywords are field names after a dot
    ("1.5.x", set()),
]
FAILS = [
    ("x | upper", "'|'"),
    ("1 if c else 2", "'if'"),
    ("a = b", "'='"),
    ("a.b()", "'('"),
    ("a == not b", "'not'"),
    ('"open', "unterminated string"),
    ("[1, 2", "expected ']'"),
    ("a.1", "a field name"),
    ("99999999999999999999", "too large"),
    ("f(1,)", "unexpected ')'"),
    ("a && b", "'&'"),
]


@pytest.mark.parametrize("expr, names", PARSES)
def test_attune_expressions_parse(expr, names):
    message, found = analyse_template("{{ " + expr + " }}")
    assert message is None
    assert set(found) == names
    assert expression_error(expr) is None  # the same without braces (when, with_items)


@pytest.mark.parametrize("expr, why", FAILS)
def test_what_attune_refuses_is_a_syntax_error_with_its_column(expr, why):
    text = "{{ " + expr + " }}"
    message = analyse_template(text)[0]
    assert message is not None and why in message
    column = int(re.search(r"at column (\d+)", message).group(1))
    assert 4 <= column <= len(text)
    r = _check(f'version: "1"\ntasks:\n  - name: a\n    action: p.act\n    input:\n      x: {json.dumps(text)}\n')
    [e] = r.errors
    assert e.code == "expression-syntax" and render_path(e.path) == "tasks[0].input.x"
    assert (e.line, e.column) == (6, 10)


def test_blocks_as_attune_extracts_them():
    # expression_validator.rs extract_expressions: an empty block and an unclosed "{{" are
    # not expressions (the second is a warning here); "{% %}" is Jinja, text to Attune
    assert analyse_template("a {{ }} b") == (None, frozenset())
    r = _check(
        'version: "1"\ntasks:\n  - name: a\n    action: p.act\n    input:\n'
        '      x: "{{ parameters.a"\n      y: "{% if x %}y{% endif %}"\n'
    )
    assert r.ok
    assert [d.code for d in r.warnings] == ["unclosed-template", "not-an-expression"]


def test_unknown_variables_are_warnings_with_a_stable_code():
    r = _check(
        'version: "1"\nvars: {count: 1}\nparameters: {type: object, properties: {n: {type: integer}}}\n'
        "tasks:\n  - name: a\n    action: p.act\n"
        '    when: "{{ count > n and nope }}"\n'
        '    next:\n      - when: "{{ succeeded() and also_nope }}"\n'
        '        publish: [{x: "{{ item + index + inquiry.a + third }}"}]\n'
    )
    assert r.ok
    assert [(d.code, render_path(d.path), d.message.split("'")[1]) for d in r.warnings] == [
        ("unknown-variable", "tasks[0].when", "nope"),
        ("unknown-variable", "tasks[0].next[0].when", "also_nope"),
        ("unknown-variable", "tasks[0].next[0].publish[0].x", "third"),
    ]
