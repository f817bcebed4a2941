"""Hostile and odd input never crashes the pipeline: each is a diagnostic."""

from __future__ import annotations

from attune.workflows.checker import Known, check_workflow


def _check(data: bytes | str, **kw):
    if isinstance(data, str):
        data = data.encode()
    return check_workflow(data, file="workflows/x.yaml", pack_ref="p", name="x", known=Known({"p.a"}), **kw)


def codes(r):
    return [d.code for d in r.diagnostics]


def test_non_utf8():
    r = _check(b'version: "1"\ntasks: \xff\xfe\n')
    assert codes(r) == ["encoding"]
    assert r.diagnostics[0].line == 2
    assert "not valid UTF-8" in r.diagnostics[0].message


def test_binary_file():
    r = _check(b"\x00\x01\x02\x03ELF")
    assert codes(r) == ["encoding"]


def test_bom_is_accepted():
    r = _check("\ufeffversion: '1'\ntasks:\n  - {name: t, action: p.a}\n")
    assert r.ok


def test_billion_laughs_is_bounded():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for c in "bcdefghijklmnop":
        lines.append(f"{c}: &{c} [" + ",".join([f"*{prev}"] * 10) + "]")
        prev = c
    r = _check("\n".join(lines))
    assert codes(r) == ["alias-limit"]
    assert r.diagnostics[0].line == 2  # the first alias


def test_small_aliases_are_fine():
    r = _check("x: &d {action: p.a}\nversion: '1'\ntasks:\n  - {name: t, <<: *d}\n  - name: u\n    action: p.a\n")
    assert "alias-limit" not in codes(r)


def test_deep_flow_nesting():
    r = _check("version: '1'\nvars:\n  x: " + "[" * 5000 + "]" * 5000 + "\ntasks: []\n")
    assert codes(r) == ["yaml-syntax"]


def test_deep_block_nesting_is_a_diagnostic():
    body = "".join("  " * i + "k:\n" for i in range(1, 400)) + "  " * 400 + "v\n"
    r = _check("version: '1'\ntasks:\n  - {name: t, action: p.a}\nvars:\n" + body)
    assert "too-deep" in codes(r)
    assert not r.ok


def test_multiple_documents():
    r = _check("version: '1'\n---\nversion: '2'\n")
    assert codes(r) == ["yaml-syntax"]
    assert "several YAML documents" in r.diagnostics[0].message


def test_scalar_document():
    r = _check("just a string")
    assert codes(r) == ["not-a-mapping"]
    assert "got a string" in r.diagnostics[0].message


def test_thousands_of_tasks():
    tasks = "".join(f"  - name: t{i}\n    action: p.a\n    next: [{{do: [t{i + 1}]}}]\n" for i in range(3000))
    tasks += "  - name: t3000\n    action: p.a\n"
    r = _check("version: '1'\ntasks:\n" + tasks)
    assert r.ok
    assert len(r.definition["tasks"]) == 3001


def test_complex_key_is_a_diagnostic():
    r = _check("version: '1'\ntasks:\n  - {name: t, action: p.a}\nvars:\n  ? [a, b]\n  : 1\n")
    assert not r.ok
    assert "type" in codes(r)


def test_yaml_error_position():
    r = _check("version: '1'\ntasks:\n  - name: 'unterminated\n")
    assert codes(r) == ["yaml-syntax"]
    assert r.diagnostics[0].line >= 3


def test_all_errors_of_a_file_are_reported():
    r = _check("tasks:\n  - name: a\n    action: nope.nope\n  - name: a\n    action: p.a\n    next: [{do: [zz]}]\n")
    assert sorted(codes(r)) == ["duplicate-task", "missing-field", "undefined-action", "undefined-task"]


def test_huge_integers_are_a_diagnostic():
    r = _check(
        "version: '1'\nvars:\n  big: 123456789012345678901234567890\ntasks:\n  - {name: t, action: p.a, timeout: 99999999999999999999999}\n"
    )
    assert not r.ok
    messages = [d.message for d in r.errors]
    assert "Value at vars.big is an integer too large for JSON (quote it)" in messages
    assert any("tasks[0].timeout" in m for m in messages)
