"""A revision's content: the hash that says "changed", the YAML a diff is made of, the
unified diff and the structural summary (tasks added, removed, changed; fields changed)."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from typing import Any

import orjson
from pydantic import BaseModel, Field

# Key order of the rendered YAML: the SPEC's order of fields, then the rest sorted.
# (Postgres keeps no key order in JSONB: a fixed order makes the same definition the same text.)
_ORDER = {
    k: i
    for i, k in enumerate(
        ("ref", "name", "label", "description", "version", "type", "action", "parameters", "output", "vars",
         "input", "when", "with_items", "batch_size", "concurrency", "retry", "timeout", "join", "publish", "do",
         "tasks", "next", "output_map", "tags", "cancellation_policy")
    )
}  # fmt: skip


def definition_hash(definition: Any) -> str:
    """sha256 of the definition's canonical JSON (keys sorted): equal definitions, equal hashes."""
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _order(key: str) -> tuple[int, str]:
    return (_ORDER.get(key, len(_ORDER)), key)


# Plain (unquoted) scalars: words that YAML cannot read as anything but a string.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ ./()-]*")
_NOT_PLAIN = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


@functools.lru_cache(maxsize=8192)  # keys and values repeat across tasks and workflows
def _string(value: str) -> str:
    if _PLAIN.fullmatch(value) and not value.endswith(" ") and value.lower() not in _NOT_PLAIN:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value, ensure_ascii=False)  # numbers, booleans, null (as YAML reads them)


def _block(value: str) -> bool:
    """A multi-line string shown line by line (a literal block), when YAML would read it back."""
    lines = value.split("\n")
    return (
        len(lines) > 1
        and not value.startswith(" ")
        and all(line == line.rstrip() for line in lines)
        and ("\r" not in value and "\t" not in value and lines[-1] != "")
    )


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Block-style YAML of JSON-like data (PyYAML's emitter took 0.17 s per large workflow)."""
    if isinstance(value, dict):
        for k in sorted(value, key=_order):
            v = value[k]
            key = _string(k)
            if isinstance(v, (dict, list)) and v:
                out.append(f"{indent}{key}:")
                _emit(v, indent + ("  " if isinstance(v, dict) else ""), out)
            elif isinstance(v, str) and _block(v):
                out.append(f"{indent}{key}: |-")
                out.extend(f"{indent}  {line}" if line else "" for line in v.split("\n"))
            else:
                out.append(f"{indent}{key}: {_empty(v) if isinstance(v, (dict, list)) else _scalar(v)}")
        return
    for item in value:
        if isinstance(item, (dict, list)) and item:
            inner: list[str] = []
            _emit(item, indent + "  ", inner)
            out.append(f"{indent}- {inner[0][len(indent) + 2 :]}")
            out.extend(inner[1:])
        else:
            out.append(f"{indent}- {_empty(item) if isinstance(item, (dict, list)) else _scalar(item)}")


def _empty(value: dict | list) -> str:
    return "{}" if isinstance(value, dict) else "[]"


def to_yaml(definition: dict[str, Any] | None) -> str:
    """The normalised definition as YAML (empty for a removed workflow)."""
    if definition is None:
        return ""
    out: list[str] = []
    _emit(definition, "", out)
    return "\n".join(out) + "\n"


def unified_diff(old: dict[str, Any] | None, new: dict[str, Any] | None, *, old_label: str, new_label: str) -> str:
    lines = difflib.unified_diff(
        to_yaml(old).splitlines(keepends=True), to_yaml(new).splitlines(keepends=True), old_label, new_label
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class StructuralSummary(BaseModel):
    tasks_added: list[str] = Field(default_factory=list, description="Top-level tasks only in the new definition")
    tasks_removed: list[str] = Field(default_factory=list, description="Top-level tasks only in the old definition")
    tasks_changed: list[str] = Field(default_factory=list, description="Tasks in both, with a different body")
    fields_changed: list[str] = Field(
        default_factory=list, description="Top-level fields (other than tasks) added, removed or changed"
    )

    @property
    def empty(self) -> bool:
        return not (self.tasks_added or self.tasks_removed or self.tasks_changed or self.fields_changed)


def _tasks(definition: dict[str, Any] | None) -> dict[str, Any]:
    tasks = (definition or {}).get("tasks") or []
    return {str(t.get("name")): t for t in tasks if isinstance(t, dict)}


def summarise(old: dict[str, Any] | None, new: dict[str, Any] | None) -> StructuralSummary:
    before, after = _tasks(old), _tasks(new)
    o, n = old or {}, new or {}
    return StructuralSummary(
        tasks_added=[t for t in after if t not in before],
        tasks_removed=[t for t in before if t not in after],
        tasks_changed=[t for t in after if t in before and before[t] != after[t]],
        fields_changed=sorted(k for k in set(o) | set(n) if k != "tasks" and o.get(k) != n.get(k)),
    )
