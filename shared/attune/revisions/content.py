"""A revision's content: the hash that says "changed", the YAML a diff is made of, the
unified diff and the structural summary (tasks added, removed, changed; fields changed)."""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

import orjson
import yaml
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


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (_ORDER.get(k, len(_ORDER)), str(k)))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None  # multi-line strings as blocks: diffs by line
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(definition: dict[str, Any] | None) -> str:
    """The normalised definition as YAML (empty for a removed workflow)."""
    if definition is None:
        return ""
    return yaml.dump(_ordered(definition), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


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
