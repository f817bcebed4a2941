"""No silent changes: what YAML or JSON Schema would quietly alter is an error, and the
expression parser's own limits are diagnostics, never exceptions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from attune.workflows.checker import Known, check_action, check_workflow
from attune.workflows.loader import SourceFile
from tests.hostile import PACK, VALID_FILES, _workflow, write_pack

OK = 'version: "1"\ntasks:\n  - name: a\n    action: p.act\n'


def _check(text: str):
    return check_workflow(text.encode(), file="workflows/w.yaml", pack_ref="p", name="w", known=Known({"p.act"}))


def _codes(r) -> list[str]:
    return [d.code for d in r.errors]


@pytest.mark.parametrize("value", ["&r [*r]", "&r {a: *r}", "&r [1, [2, {b: *r}]]"])
def test_a_recursive_alias_is_an_error_not_null(value):
    r = _check(OK + f"vars:\n  v: {value}\n")
    assert not r.ok
    assert _codes(r) == ["recursive-alias"]
    assert r.errors[0].line == 6


def test_a_plain_alias_is_still_read():
    r = _check(OK + "vars:\n  a: &x [1, 2]\n  b: *x\n")
    assert r.ok
    assert r.definition["vars"] == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize(
    "tag, value", [("!foo", "x"), ("!!set", "{x}"), ("!!binary", "aGk="), ("!!omap", "[a: 1]"), ("!<x:y>", "x")]
)
def test_an_unknown_tag_is_an_error_not_dropped(tag, value):
    r = _check(OK + f"description: {tag} {value}\n")
    assert not r.ok
    assert _codes(r) == ["yaml-tag"]
    assert (r.errors[0].line, r.errors[0].column) == (5, 14)


@pytest.mark.parametrize(
    "text",
    [
        "!foo\n" + OK,
        OK + "vars:\n  v:\n    !foo x\n",
        OK + "vars:\n  v: [1,!foo x]\n",
        OK + "vars:\n  v: {a: 1, b:\t!foo x}\n",
        OK + "vars:\n  v:\n    - !foo x\n",
        OK + "vars:\n  ? !foo v\n  : 1\n",
        OK + "vars:\n  v: &a !foo x\n",
    ],
    ids=["file-start", "next-line", "flow-seq", "flow-map-tab", "block-seq", "explicit-key", "after-anchor"],
)
def test_a_tag_is_found_wherever_a_node_starts(text):
    assert _codes(_check(text)) == ["yaml-tag"]


def test_a_tag_on_the_document_is_an_error():
    r = _check("--- !foo\n" + OK)
    assert _codes(r) == ["yaml-tag"]


def test_core_tags_and_expressions_with_bangs_are_fine():
    r = _check(OK.replace('"1"', "!!str 1") + "description: ! plain\nvars:\n  n: !!int '3'\n")
    assert r.ok, r.diagnostics
    assert r.definition["version"] == "1" and r.definition["vars"] == {"n": 3}
    r = _check(OK + "    when: '{{ vars.x != 1 and not (vars.y != 2) }}'\n")
    assert r.ok, r.diagnostics


@pytest.mark.parametrize("pattern", ["([", "*", "a{2,1}"])
@pytest.mark.parametrize("field", ["parameters", "output"])
def test_a_json_schema_pattern_must_compile(field, pattern):
    r = _check(OK + f"{field}:\n  type: object\n  properties:\n    a: {{type: string, pattern: '{pattern}'}}\n")
    assert not r.ok
    assert _codes(r) == ["invalid-schema"]
    assert "regex" in r.errors[0].message
    assert r.errors[0].line == 8


def test_a_pattern_properties_key_must_compile():
    r = _check(OK + "parameters:\n  type: object\n  patternProperties:\n    '([': {}\n")
    assert _codes(r) == ["invalid-schema"]


def test_a_good_pattern_is_fine():
    r = _check(OK + "parameters:\n  type: object\n  properties:\n    a: {type: string, pattern: '^[a-z]+$'}\n")
    assert r.ok, r.diagnostics


@pytest.mark.parametrize(
    "text",
    [
        "1: x\n" + OK,
        "null: x\n" + OK,
        "[a, b]: x\n" + OK,
        OK + "    2: x\n",
        OK + "    retry: {count: 1, 3: x}\n",
        OK + "    next:\n      - {do: [a], 4: x}\n",
        OK + "vars:\n  5: x\n",
        OK + "    input: {true: 1}\n",
        OK + "output_map:\n  6: x\n",
    ],
    ids=["top-int", "top-null", "top-seq", "task", "retry", "transition", "vars", "input", "output_map"],
)
def test_a_key_that_is_not_a_string_is_an_error(text):
    r = _check(text)
    assert not r.ok
    assert "type" in _codes(r)
    assert any("must be a string" in d.message for d in r.errors)


def test_an_unknown_string_field_is_still_only_a_warning():
    r = _check("colour: blue\n" + OK)
    assert r.ok
    assert [d.code for d in r.warnings] == ["unknown-field"]


@pytest.mark.parametrize(
    "field, expr",
    [
        ("when", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"),
        ("when", "(" * 300 + "1" + ")" * 300),
        ("when", "{{ " + "not " * 300 + "x }}"),
        ("when", "not " * 300 + "x"),
        ("when", "-" * 300 + "1"),
        ("with_items", "{{ " + "[" * 100 + "]" * 100 + " }}"),
        ("input", "{{ " + "(" * 100 + "1" + ")" * 100 + " }}"),
    ],
)
def test_the_expression_parsers_limits_are_diagnostics(field, expr):
    where = f"input: {{x: '{expr}'}}" if field == "input" else f"{field}: '{expr}'"
    r = _check(OK + f"    {where}\n")
    assert not r.ok
    assert _codes(r) == ["expression-syntax"]


def test_a_long_chain_of_operators_costs_linear_time():
    # Jinja's compiler took 15 s of CPU on 300 terms (cubic); only its parser is used
    import time

    start = time.process_time()
    r = _check(OK + "    when: '" + " + ".join(["x"] * 3000) + "'\n")
    assert r.ok, r.diagnostics
    assert time.process_time() - start < 3


def test_nesting_under_the_bound_parses_and_text_around_blocks_is_not_counted():
    r = _check(OK + "    when: '{{ " + "(" * 30 + "1" + ")" * 30 + " }}'\n")
    assert r.ok, r.diagnostics
    r = _check(
        OK + "    input: {x: 'echo ((((((((((((((((((((((((((((((((((((------------------------------------ {{ 1 }}'}\n"
    )
    assert r.ok, r.diagnostics


def test_an_action_file_gets_the_same_checks(tmp_path):
    for text in (b"parameters: &r {x: *r}\n", b"label: !foo x\n", b"parameters: {1: x}\n", b"1: x\n"):
        f = SourceFile("a", "p.a", "actions/a.yaml", text, "", len(text))
        a = check_action(f, "p")
        assert a.meta is None and any(d.is_error for d in a.diagnostics), text


def test_offline_validate_never_prints_a_traceback(tmp_path):
    from tests.hostile import WORKFLOW, HostileFile

    deep = HostileFile(WORKFLOW, b"deep.yaml", _workflow(when='"{{ ' + "not " * 5000 + 'x }}"'), "deep")
    chain = HostileFile(WORKFLOW, b"chain.yaml", _workflow(when='"' + "not " * 300 + 'x"'), "chain")
    nul = HostileFile(WORKFLOW, b"nul.yaml", _workflow(description='"a\\0b"'), "nul")
    odd = HostileFile(WORKFLOW, b"\xff\n.yaml", _workflow(), "name")
    pack = write_pack(tmp_path, PACK, [*VALID_FILES, deep, chain, nul, odd])
    for fmt in ("text", "json"):
        r = subprocess.run(
            [sys.executable, "-m", "attune_cli.main", "validate", str(pack), "--format", fmt],
            capture_output=True,
            text=True,
            errors="replace",
        )
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
        if fmt == "text":
            assert "p: 5 workflows checked, 4 with errors" in r.stdout
