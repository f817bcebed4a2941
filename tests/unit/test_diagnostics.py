"""A file's diagnostics cost linear time and bounded space, and their text is safe to store and print."""

from __future__ import annotations

import json
import time

from attune.workflows.checker import Known, check_workflow
from attune.workflows.diagnostics import MAX_DIAGNOSTICS, TOO_MANY, error, safe_text

HEAD = 'version: "1"\ntasks:\n  - name: a\n    action: p.act\n'


def _check(text: str):
    return check_workflow(text.encode(), file="workflows/w.yaml", pack_ref="p", name="w", known=Known({"p.act"}))


def test_thousands_of_bad_variables_cost_linear_time_and_bounded_output():
    # one diagnostic per variable name; placing each used to scan the whole mapping
    n = 20_000
    text = HEAD + "vars:\n" + "".join(f"  vv.{i:06d}: 1\n" for i in range(n))
    start = time.process_time()
    r = _check(text)
    cpu = time.process_time() - start
    assert not r.ok
    assert len(r.diagnostics) == MAX_DIAGNOSTICS + 1
    assert all(d.code == "invalid-name" for d in r.diagnostics[:-1])
    last = r.diagnostics[-1]
    assert last.code == TOO_MANY and last.is_error
    assert f"{n - MAX_DIAGNOSTICS} more" in last.message
    # the kept ones are the first, in order, each at its own line
    assert [d.line for d in r.diagnostics[:3]] == [6, 7, 8]
    assert len(json.dumps([d.to_dict() for d in r.diagnostics])) < 100_000
    assert cpu < 8, f"{cpu:.1f}s of CPU for {n} diagnostics"


def test_a_valid_file_with_many_warnings_stays_valid():
    text = HEAD.replace("action: p.act\n", "action: p.act\n" + "".join(f"    x{i}: 1\n" for i in range(500)))
    r = _check(text)
    assert r.ok
    assert len(r.diagnostics) == MAX_DIAGNOSTICS + 1
    assert r.diagnostics[-1].code == TOO_MANY and not r.diagnostics[-1].is_error


def test_errors_are_kept_before_warnings():
    unknown = "".join(f"    x{i}: 1\n" for i in range(500))
    text = HEAD.replace("action: p.act\n", "action: p.act\n" + unknown) + "  - name: a\n    action: p.act\n"
    r = _check(text)
    assert "duplicate-task" in [d.code for d in r.errors]
    assert r.diagnostics[-1].code == TOO_MANY and not r.diagnostics[-1].is_error


def test_diagnostic_text_is_safe_to_store_and_print():
    d = error("x", "Name 'a\x00b\nc' is bad", ("vars", "a\x00b\nc"), file="workflows/\udcffx\n.yaml")
    out = d.to_dict()
    for value in (out["message"], out["file"], out["path"], d.format_text()):
        assert "\x00" not in value and "\n" not in value
        value.encode("utf-8")  # no lone surrogates
    assert out["file"] == "workflows/\\xffx\\n.yaml"
    assert len(safe_text("x" * 5000)) == 1000
