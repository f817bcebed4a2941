"""Every file of tests/data/corpus states the diagnostics it must produce, exactly.

A line ``# expect: <severity> <code> <line>:<column> <message>`` per diagnostic,
or ``# expect: nothing``. Removing a rule from the validator makes its files fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attune.workflows.checker import check_pack
from attune.workflows.loader import load_pack_dir
from tests.expectations import expected as _expected

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
KNOWN_ELSEWHERE = {"core.local"}  # an action another pack registered


@pytest.fixture(scope="module")
def report():
    return check_pack(load_pack_dir(CORPUS, "corpus"), known_actions=KNOWN_ELSEWHERE)


FILES = sorted(p.name for p in (CORPUS / "workflows").glob("*.y*ml"))


def test_every_file_states_expectations():
    for name in FILES:
        text = (CORPUS / "workflows" / name).read_text()
        assert "# expect:" in text, name


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(report, name):
    result = next(w for w in report.workflows if w.file == f"workflows/{name}")
    got = [(d.severity, d.code, d.line, d.column, d.message) for d in result.diagnostics]
    assert sorted(got) == sorted(_expected(CORPUS / "workflows" / name))
    has_errors = any(d.is_error for d in result.diagnostics)
    assert result.ok is not has_errors
    assert (result.definition is None) is has_errors
    for d in result.diagnostics:
        assert d.file == f"workflows/{name}"


def test_every_rule_is_covered(report):
    codes = {d.code for w in report.workflows for d in w.diagnostics}
    spec_rules = {
        "yaml-syntax", "not-a-mapping", "duplicate-key", "missing-field", "type", "range", "ref-mismatch",
        "duplicate-task", "reserved-name", "missing-action", "missing-subtasks", "undefined-task",
        "action-format", "undefined-action", "invalid-schema", "expression-syntax", "decision-defaults",
        "decision-branch", "alias-limit", "unknown-field", "legacy-transition", "unreachable-task",
        "no-entry-task",
    }  # fmt: skip
    assert spec_rules <= codes, spec_rules - codes


def test_valid_files_have_definitions(report):
    for w in report.workflows:
        if w.file.split("/")[1].startswith("valid_"):
            assert w.ok and w.definition is not None, w.file


def test_actions_of_the_pack_are_known(report):
    refs = {a.ref for a in report.actions}
    assert refs == {"corpus.echo", "corpus.deploy"}  # deploy's ref comes from its file name
