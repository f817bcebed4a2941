"""Every constraint the database enforces is checked before any write, as a diagnostic
on the file that breaks it: NUL, column widths, encodings, the ref column's width."""

from __future__ import annotations

import pytest

from attune.actions.models import Action
from attune.sync.models import PackFile, SyncStaging
from attune.workflows.checker import Known, check_action, check_pack, check_workflow
from attune.workflows.loader import Selection, SourceFile, list_workflow_files, load_pack_dir, load_workflows
from attune.workflows.models import WorkflowDefinition
from tests.hostile import (
    ACTION,
    PACK,
    VALID_ACTION,
    VALID_FILES,
    WORKFLOW,
    HostileFile,
    _workflow,
    assert_fits_db,
    valid_workflow,
    write_pack,
)

OK = 'version: "1"\ntasks:\n  - name: a\n    action: p.act\n'


def _check(text: str, pack_ref: str = "p", name: str = "w"):
    return check_workflow(
        text.encode(), file=f"workflows/{name}.yaml", pack_ref=pack_ref, name=name, known=Known({f"{pack_ref}.act"})
    )


def _action(text: bytes, name: str = "a"):
    return check_action(SourceFile(name, f"p.{name}", f"actions/{name}.yaml", text, "", len(text)), "p")


def test_the_limits_are_the_columns_widths():
    from attune.workflows import limits

    wd, act, st, pf = (m.__table__.c for m in (WorkflowDefinition, Action, SyncStaging, PackFile))  # type: ignore[attr-defined]
    for col in (wd.ref, act.ref, st.ref, pf.ref):
        assert col.type.length == limits.REF_MAX
    for col in (wd.name, st.name):
        assert col.type.length == limits.NAME_MAX
    for col in (wd.label, act.label, st.label):
        assert col.type.length == limits.LABEL_MAX
    for col in (wd.version, st.version):
        assert col.type.length == limits.VERSION_MAX
    for col in (wd.source_file, act.source_file, st.source_file, pf.source_file):
        assert col.type.length == limits.SOURCE_FILE_MAX
    assert act.runner_type.type.length == limits.RUNNER_TYPE_MAX
    assert act.entry_point.type.length == limits.ENTRY_POINT_MAX


@pytest.mark.parametrize(
    "text",
    [
        OK + 'description: "a\\0b"\n',
        OK + 'label: "a\\x00b"\n',
        OK + 'tags: ["\\u0000"]\n',
        OK + 'vars:\n  v: {a: [1, {b: "\\U00000000"}]}\n',
        OK + 'vars:\n  v: {"k\\0": 1}\n',
        OK + '    input: {x: "\\0"}\n',
        OK + '    when: "{{ 1 }}\\0"\n',
        OK + 'parameters: {type: object, description: "\\0"}\n',
        OK.replace("action: p.act", 'action: "p.act\\0"'),
    ],
    ids=["description", "label", "tag", "nested-value", "nested-key", "input", "when", "schema", "action"],
)
def test_nul_anywhere_is_an_error(text):
    r = _check(text)
    assert not r.ok
    assert "nul-character" in [d.code for d in r.errors]
    assert all("\x00" not in dep for dep in r.deps)  # staged and cached with the error
    for d in r.diagnostics:
        assert "\x00" not in d.message and "\x00" not in d.to_dict()["path"]


def test_an_escaped_backslash_zero_is_not_nul():
    r = _check(OK + 'description: "C:\\\\0 and \\\\x00"\n')
    assert r.ok, r.diagnostics
    assert r.definition["description"] == "C:\\0 and \\x00"


def test_label_width():
    assert _check(OK + f"label: {'L' * 255}\n").ok
    r = _check(OK + f"label: {'L' * 256}\n")
    assert [d.code for d in r.errors] == ["range"]


def test_a_long_pack_ref_and_a_long_file_name_make_a_ref_too_long(tmp_path):
    pack_ref = "p" * 100
    long_name = b"w" * 160  # a valid name, but 100 + 1 + 160 > 255
    files = [
        HostileFile(WORKFLOW, b"ok.yaml", valid_workflow(pack_ref), "valid"),
        HostileFile(ACTION, b"act.yaml", VALID_ACTION, "valid"),
        HostileFile(WORKFLOW, long_name + b".yaml", valid_workflow(pack_ref), "long"),
        HostileFile(ACTION, long_name + b".yaml", VALID_ACTION, "long"),
    ]
    pack = write_pack(tmp_path, pack_ref, files)
    report = check_pack(load_pack_dir(pack, pack_ref))
    ok, bad = report.workflows
    assert ok.ok, ok.diagnostics
    assert [d.code for d in bad.errors] == ["ref-too-long"]
    assert len(bad.ref) <= 255  # still staged, as an error row
    assert [a.meta is not None for a in report.actions] == [True, False]
    assert_fits_db(report)
    # and through check_workflow directly (the validator holds the same line)
    r = _check(OK, pack_ref=pack_ref, name="w" * 160)
    assert "ref-too-long" in [d.code for d in r.errors]


def test_a_file_name_that_is_not_utf8_is_a_diagnostic_and_the_rest_registers(tmp_path):
    odd = HostileFile(WORKFLOW, b"caf\xe9.yaml", _workflow(), "latin-1 name")
    odd_action = HostileFile(ACTION, b"\xff.yaml", VALID_ACTION, "latin-1 name")
    pack = write_pack(tmp_path, PACK, [*VALID_FILES, odd, odd_action])
    report = check_pack(load_pack_dir(pack, PACK))
    by_file = {w.file: w for w in report.workflows}
    assert set(by_file) == {"workflows/caf\\xe9.yaml", "workflows/ok.yaml"}
    assert by_file["workflows/ok.yaml"].ok
    bad = by_file["workflows/caf\\xe9.yaml"]
    assert [d.code for d in bad.errors] == ["invalid-name"]
    assert "not valid UTF-8" in bad.errors[0].message
    assert {a.file: a.meta is not None for a in report.actions} == {
        "actions/act.yaml": True,
        "actions/\\xff.yaml": False,
    }
    assert_fits_db(report)
    # the listing a chunked sync splits gives the same names, and they select the files
    names = list_workflow_files(pack)
    assert names == ["workflows/caf\\xe9.yaml", "workflows/ok.yaml"]
    only = Selection(only={"workflows/caf\\xe9.yaml"})
    assert [f.path for f in load_workflows(pack, PACK, selection=only).workflows] == ["workflows/caf\\xe9.yaml"]


@pytest.mark.parametrize(
    "text, code",
    [
        (b'label: "a\\0"\n', "nul-character"),
        (b'parameters:\n  x: {default: "\\0"}\n', "nul-character"),
        (b'parameters:\n  "x\\0": {type: string}\n', "nul-character"),
        (b"label: " + b"L" * 256 + b"\n", "range"),
        (b"runner_type: " + b"r" * 101 + b"\n", "range"),
        (b"entry_point: " + b"e" * 1025 + b"\n", "range"),
        (b"ref: p." + b"r" * 254 + b"\n", "ref-too-long"),
        (b'ref: "p.x\\n"\n', "ref-mismatch"),
        (b"ref: p.\n", "ref-mismatch"),
        (b"ref: 5\n", "type"),
        (b"parameters: {x: {default: .inf}}\n", "type"),
        (b"parameters: {x: {default: 123456789012345678901234567890}}\n", "type"),
        (b"parameters: {1: x}\n", "type"),
    ],
)
def test_an_action_that_does_not_fit_is_refused(text, code):
    a = _action(text)
    assert a.meta is None
    assert code in [d.code for d in a.diagnostics if d.is_error]


def test_a_good_action_with_a_declared_ref_registers():
    a = _action(b"ref: p.deploy.app\nlabel: A\nrunner_type: shell\nparameters: {x: {type: string}}\n")
    assert a.meta is not None and a.ref == "p.deploy.app"
