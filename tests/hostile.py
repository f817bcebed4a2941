"""Hostile pack files: what a careless or crafted pack holds, beside valid files.

Shared by the unit tests (checker and loader level) and the end-to-end tests
(a real sync job on Postgres and SQLite). Each hostile file must be refused
with an error diagnostic on that file, and nothing else in the pack may
suffer: the valid files register, the job succeeds.

    from tests.hostile import VALID_FILES, hostile_workflows, hostile_actions, write_pack, assert_fits_db

    @given(wf=hostile_workflows(), act=hostile_actions())
    def test_x(tmp_path_factory, wf, act):
        pack = write_pack(tmp_path_factory.mktemp("packs"), "p", [*VALID_FILES, wf, act])
        ...

A ``HostileFile`` carries its name as bytes (a name need not be UTF-8), its
content as bytes, whether it is a workflow or an action, and why it is hostile.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st
from sqlalchemy import JSON, String, Table

PACK = "p"
WORKFLOW, ACTION = "workflows", "actions"


@dataclass(frozen=True)
class HostileFile:
    kind: str  # WORKFLOW or ACTION: the pack folder it goes in
    name: bytes  # the file name, e.g. b"h.yaml" (bytes: it need not be UTF-8)
    data: bytes
    why: str

    @property
    def stem(self) -> bytes:
        return self.name.rsplit(b".", 1)[0]


def valid_workflow(pack_ref: str = PACK) -> bytes:
    return (
        'version: "1.0"\nlabel: OK\ndescription: fine\n'
        "vars:\n  v: 1\n"
        "tasks:\n"
        f"  - name: a\n    action: {pack_ref}.act\n    input: {{x: '{{{{ vars.v }}}}'}}\n"
        "    next:\n      - when: '{{ succeeded() }}'\n        do: [b]\n"
        f"  - name: b\n    action: {pack_ref}.act\n"
    ).encode()


VALID_ACTION = (
    b"label: Act\ndescription: an action\nrunner_type: shell\nentry_point: act.sh\nparameters:\n  x: {type: string}\n"
)
VALID_FILES = (
    HostileFile(WORKFLOW, b"ok.yaml", valid_workflow(), "valid"),
    HostileFile(ACTION, b"act.yaml", VALID_ACTION, "valid"),
)


def write_pack(base: Path, pack_ref: str, files: list[HostileFile] | tuple[HostileFile, ...]) -> Path:
    """``base/pack_ref`` with ``workflows/`` and ``actions/`` holding ``files`` (names as bytes)."""
    pack = Path(base) / pack_ref
    for sub in (WORKFLOW, ACTION):
        (pack / sub).mkdir(parents=True, exist_ok=True)
    for f in files:
        path = os.fsencode(pack / f.kind) + b"/" + f.name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f.data)
        finally:
            os.close(fd)
    return pack


# -- pieces -------------------------------------------------------------------

_SAFE = st.text(alphabet="abcXYZ019 _-.", max_size=20)
# what yaml double-quoted escapes make NUL of
_NUL_ESCAPES = st.sampled_from(["\\0", "\\x00", "\\u0000", "\\U00000000"])


@st.composite
def _nul_string(draw: st.DrawFn) -> str:
    """A double-quoted YAML scalar (its source text) holding a NUL."""
    return '"' + draw(_SAFE) + draw(_NUL_ESCAPES) + draw(_SAFE) + '"'


def _q(text: str) -> str:
    """A YAML double-quoted scalar for ``text`` (JSON's escapes are YAML's)."""
    return json.dumps(text)


# Names that are not names: weird unicode, control characters, trailing newlines.
_BAD_NAME = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30).filter(
        lambda s: not s.isascii() or not s.replace("_", "a").replace("-", "a").isalnum()
    ),
    st.sampled_from(["a\n", "good\n", "a\r", "a b", "a\t", "\u202eevil", "a\u200b", "\U0001f600", "n\u0301"]),
)
# Attune takes any task name of 1 to 255 characters (parser.rs, Task.name); what cannot be
# stored or shown on one line is still refused: control characters, or too long.
_BAD_TASK_NAME = st.one_of(
    st.sampled_from(["a\n", "good\n", "a\r", "a\t", "x\x7f", "\x85y"]),
    st.text(alphabet="ab", min_size=256, max_size=300),
)

_TAG = st.sampled_from(["!foo", "!!set", "!!binary", "!!omap", "!!pairs", "!<tag:example.com,2000:x>", "!e!x"])


def _deep_template(n: int) -> str:
    return "{{ " + "(" * n + "1" + ")" * n + " }}"


def _workflow(**slots: str) -> bytes:
    """A valid workflow with some of its pieces replaced (YAML source text of each)."""
    s = {
        "top": "",
        "version": '"1.0"',
        "label": "W",
        "description": "d",
        "var_key": "v",
        "var_value": "1",
        "task_name": "a",
        "task_extra": "",
        "input_key": "x",
        "input_value": "'{{ vars.v }}'",
        "when": "'{{ succeeded() }}'",
        "tag": "t",
        "parameters": "{type: object}",
        "action": f"{PACK}.act",
    }
    s.update(slots)
    return (
        f"{s['top']}version: {s['version']}\nlabel: {s['label']}\ndescription: {s['description']}\n"
        f"parameters: {s['parameters']}\n"
        f"tags: [{s['tag']}]\n"
        f"vars:\n  {s['var_key']}: {s['var_value']}\n"
        "tasks:\n"
        f"  - name: {s['task_name']}\n    action: {s['action']}\n{s['task_extra']}"
        f"    input:\n      {s['input_key']}: {s['input_value']}\n"
        f"    next:\n      - when: {s['when']}\n        do: [b]\n"
        f"  - name: b\n    action: {PACK}.act\n"
    ).encode()


_WF_SLOTS = [
    "label",
    "description",
    "version",
    "var_value",
    "var_key",
    "input_key",
    "input_value",
    "tag",
    "when",
    "action",
]


@st.composite
def _wf_content(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(
        st.sampled_from(
            [
                "nul", "long-label", "long-version", "deep-when", "deep-input", "long-chain", "bad-task-name",
                "bad-var-name", "recursive-alias", "unknown-tag", "non-string-key", "bad-pattern", "not-utf8",
                "nul-byte", "inf", "huge-int", "deep-value", "billion-laughs", "lone-surrogate",
            ]
        )
    )  # fmt: skip
    if kind == "nul":
        slot = draw(st.sampled_from(_WF_SLOTS))
        return _workflow(**{slot: draw(_nul_string())}), f"NUL in {slot}"
    if kind == "long-label":
        return _workflow(label=_q("L" * draw(st.integers(256, 20_000)))), kind
    if kind == "long-version":
        return _workflow(version=_q("1" * draw(st.integers(51, 5_000)))), kind
    if kind == "deep-when":
        return _workflow(when=_q(_deep_template(draw(st.integers(33, 20_000))))), kind
    if kind == "deep-input":
        return _workflow(input_value=_q(_deep_template(draw(st.integers(33, 20_000))))), kind
    if kind == "long-chain":  # no brackets: Python's compiler nests what Jinja makes of it
        n = draw(st.integers(300, 20_000))
        return _workflow(when=_q("{{ " + "not " * n + "x }}")), kind
    if kind == "bad-task-name":
        return _workflow(task_name=_q(draw(_BAD_TASK_NAME))), kind
    if kind == "bad-var-name":
        return _workflow(var_key=_q(draw(_BAD_NAME))), kind
    if kind == "recursive-alias":
        value = draw(st.sampled_from(["&r [*r]", "&r {a: *r}", "&r [1, [2, *r]]"]))
        return _workflow(var_value=value), kind
    if kind == "unknown-tag":
        slot = draw(st.sampled_from(["description", "var_value", "label"]))
        return _workflow(**{slot: f"{draw(_TAG)} x" if slot != "var_value" else f"{draw(_TAG)} [a]"}), kind
    if kind == "non-string-key":
        where = draw(st.sampled_from(["top", "var_key", "input_key", "task_extra"]))
        key = draw(st.sampled_from(["1", "null", "true", "1.5", "[a, b]", "{a: 1}"]))
        if where == "top":
            return _workflow(top=f"? {key}\n: x\n"), kind
        if where == "task_extra":
            return _workflow(task_extra=f"    ? {key}\n    : x\n"), kind
        return _workflow(**{where: key}), kind
    if kind == "bad-pattern":
        pattern = draw(st.sampled_from(["([", "*", "a{2,1}", "(?P<x", "\\"]))
        return _workflow(
            parameters="{type: object, properties: {a: {type: string, pattern: " + _q(pattern) + "}}}"
        ), kind
    if kind == "not-utf8":
        raw = draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80abc"]))
        return _workflow(description="X").replace(b"description: X", b"description: X" + raw), kind
    if kind == "nul-byte":
        return _workflow(description="X").replace(b"description: X", b"description: X\x00"), kind
    if kind == "inf":
        return _workflow(var_value=draw(st.sampled_from([".inf", "-.inf", ".nan"]))), kind
    if kind == "huge-int":
        return _workflow(var_value=str(draw(st.integers(2**63, 2**200)))), kind
    if kind == "deep-value":
        n = draw(st.integers(66, 300))
        return _workflow(var_value="[" * n + "]" * n), kind
    if kind == "billion-laughs":
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
        return ("\n".join(lines) + "\n").encode() + _workflow(), kind
    assert kind == "lone-surrogate"
    return _workflow(description='"\\ud800x"'), kind


@st.composite
def hostile_workflows(draw: st.DrawFn) -> HostileFile:
    """A workflow file that must be refused: hostile content under a good name, or a good
    content under a hostile name."""
    if draw(st.integers(0, 4)) == 0:
        name = draw(
            st.one_of(
                st.sampled_from([b"good\n", b"h\xff", b"h\xc3", b"\xe9t\xe9", b"h\r", b"h\x7f", b"h.x", b"-h"]),
                st.integers(201, 250).map(lambda n: b"h" * n),
            )
        )
        return HostileFile(WORKFLOW, name + b".yaml", _workflow(), f"file name {name[:40]!r}")
    data, why = draw(_wf_content())
    return HostileFile(WORKFLOW, b"h.yaml", data, why)


def _action(**slots: str) -> bytes:
    s = {
        "top": "",
        "ref": "",
        "label": "A",
        "description": "d",
        "runner_type": "shell",
        "entry_point": "a.sh",
        "param_key": "x",
        "param_value": "{type: string}",
    }
    s.update(slots)
    ref = f"ref: {s['ref']}\n" if s["ref"] else ""
    return (
        f"{s['top']}{ref}label: {s['label']}\ndescription: {s['description']}\nrunner_type: {s['runner_type']}\n"
        f"entry_point: {s['entry_point']}\nparameters:\n  {s['param_key']}: {s['param_value']}\n"
    ).encode()


@st.composite
def hostile_actions(draw: st.DrawFn) -> HostileFile:
    """An action file that must be refused (not registered, an error diagnostic on it)."""
    kind = draw(
        st.sampled_from(
            [
                "nul", "long-label", "long-runner", "long-entry", "long-ref", "bad-ref", "non-string-key",
                "inf", "huge-int", "recursive-alias", "unknown-tag", "not-utf8", "bad-name", "deep-value",
            ]
        )
    )  # fmt: skip
    name = b"h2.yaml"
    if kind == "nul":
        slot = draw(st.sampled_from(["label", "description", "runner_type", "entry_point", "param_key", "param_value"]))
        value = draw(_nul_string())
        data = _action(**{slot: value if slot != "param_value" else "{default: " + value + "}"})
    elif kind == "long-label":
        data = _action(label=_q("L" * draw(st.integers(256, 5000))))
    elif kind == "long-runner":
        data = _action(runner_type=_q("r" * draw(st.integers(101, 5000))))
    elif kind == "long-entry":
        data = _action(entry_point=_q("e" * draw(st.integers(1025, 5000))))
    elif kind == "long-ref":
        data = _action(ref=_q(f"{PACK}." + "r" * draw(st.integers(254, 5000))))
    elif kind == "bad-ref":
        data = _action(ref=_q(draw(st.sampled_from([f"{PACK}.x\n", f"{PACK}.", "other.x", f"{PACK}..x", "p.x\x00"]))))
    elif kind == "non-string-key":
        key = draw(st.sampled_from(["1", "null", "true", "[a, b]"]))
        data = _action(param_key=key) if draw(st.booleans()) else _action(top=f"? {key}\n: x\n")
    elif kind == "inf":
        data = _action(param_value="{default: .inf}")
    elif kind == "huge-int":
        data = _action(param_value="{default: " + str(draw(st.integers(2**63, 2**200))) + "}")
    elif kind == "recursive-alias":
        data = _action(param_value="&r {default: *r}")
    elif kind == "unknown-tag":
        data = _action(param_value=f"{draw(_TAG)} [a]")
    elif kind == "not-utf8":
        data = _action(description="X").replace(b"description: X", b"description: X\xff")
    elif kind == "deep-value":
        n = draw(st.integers(66, 300))
        data = _action(param_value="{default: " + "[" * n + "]" * n + "}")
    else:
        assert kind == "bad-name"
        name = draw(st.sampled_from([b"h\xff.yaml", b"act2\n.yaml", b"h" * 250 + b".yaml"]))
        data = VALID_ACTION
    return HostileFile(ACTION, name, data, f"action: {kind}")


# -- what the database takes ----------------------------------------------------


def _tables() -> dict[str, Table]:
    from attune.actions.models import Action
    from attune.sync.models import PackFile, SyncStaging
    from attune.workflows.models import WorkflowDefinition

    return {m.__tablename__: m.__table__ for m in (WorkflowDefinition, Action, SyncStaging, PackFile)}  # type: ignore[attr-defined]


def _storable_text(value: str, where: str) -> None:
    assert "\x00" not in value, f"{where}: NUL in {value[:80]!r}"
    value.encode("utf-8")  # no lone surrogates (a file name that is not UTF-8)


def _storable_json(value: Any, where: str) -> None:
    orjson.dumps(value)  # plain JSON: string keys, JSON's types, 64-bit integers, finite floats
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            _storable_text(v, where)
        elif isinstance(v, dict):
            for k, x in v.items():
                _storable_text(k, where)
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def assert_row_fits(table: Table, row: dict[str, Any]) -> None:
    """Every value of ``row`` fits its column of ``table``: widths, no NUL, UTF-8, plain JSON."""
    for column, value in row.items():
        col = table.c[column]
        where = f"{table.name}.{column}"
        if value is None:
            assert col.nullable, f"{where} is NULL"
        elif isinstance(col.type, JSON):
            _storable_json(value, where)
        elif isinstance(col.type, String):
            assert isinstance(value, str), where
            _storable_text(value, where)
            if col.type.length is not None:
                assert len(value) <= col.type.length, f"{where}: {len(value)} > {col.type.length}"


def assert_fits_db(report: Any) -> None:
    """What a sync writes from a ``PackReport`` fits the database: the staged row of every
    workflow file (valid or not), the workflow row of the valid ones, the action rows,
    and the diagnostics that go into the job's result."""
    t = _tables()
    for w in report.workflows:
        diags = [d.to_dict() for d in w.diagnostics]
        staged: dict[str, Any] = {
            "ref": w.ref,
            "name": w.name,
            "source_file": w.file,
            "content_hash": w.content_hash,
            "diagnostics": diags,
            "deps": list(w.deps),
        }
        if w.definition is not None:
            d = w.definition
            row = {
                "label": d["label"],
                "description": d["description"],
                "version": d["version"],
                "param_schema": d["parameters"],
                "out_schema": d["output"],
                "definition": d,
                "tags": d["tags"],
            }
            staged.update(row)
            assert_row_fits(t["workflow_definitions"], {**row, "ref": w.ref, "name": w.name, "warnings": diags,
                                                        "source_file": w.file, "content_hash": w.content_hash})  # fmt: skip
        assert_row_fits(t["sync_staging"], staged)
        cached = {k: staged[k] for k in ("ref", "source_file", "content_hash", "diagnostics", "deps")}
        assert_row_fits(t["pack_files"], cached)
    for a in report.actions:
        _storable_json([d.to_dict() for d in a.diagnostics], "action diagnostics")
        if a.meta is not None:
            assert_row_fits(
                t["actions"], {"ref": a.ref, "source_file": a.file, "content_hash": a.content_hash, **a.meta}
            )
    _storable_json([d.to_dict() for d in report.notes], "notes")
