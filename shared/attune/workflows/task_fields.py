"""The task fields of today's Attune (crates/common/src/workflow/parser.rs, struct Task, and
validator.rs, validate_task): ``wait_for``, ``iterate_cache``, the scheduling fields, the
trace tag template and the visual builder's ``__chart_meta__``."""

from __future__ import annotations

from typing import Any

from attune.workflows.diagnostics import Path, render_path
from attune.workflows.limits import INT_MAX
from attune.workflows.rules import (
    CHART_META,
    ITERATE_CACHE_FIELDS,
    SCHEDULING_FIELDS,
    WAIT_FOR_FIELDS,
    empty,
    is_int,
)
from attune.workflows.transitions import TransitionWalker

_CACHE_TEXTS = ("namespace", "owner_type", "owner_ref", "generation")


class FieldWalker(TransitionWalker):
    def attune_fields(self, task: dict[str, Any], path: Path, label: str, out: dict[str, Any]) -> None:
        """Checks the fields of today's Attune a task has and keeps them in ``out``."""
        ttype = out["type"]
        if "wait_for" in task:
            out["wait_for"] = self.wait_for(task, path, label, ttype)
        if "iterate_cache" in task:
            out["iterate_cache"] = self.iterate_cache(task, path, label, ttype)
        if "permission_set_ref" in task:
            if "permission_set_refs" in task:
                self.err(
                    "duplicate-field",
                    f"{label}: 'permission_set_ref' and 'permission_set_refs' are the same field: give one",
                    (*path, "permission_set_ref"),
                    key=True,
                )
            else:
                self.check_values(task["permission_set_ref"], (*path, "permission_set_ref"), names=True)
                out["permission_set_refs"] = task["permission_set_ref"]
        for field in SCHEDULING_FIELDS:
            if field in task and task[field] is not None:
                self.check_values(task[field], (*path, field), names=True)
                out[field] = task[field]
        if "trace_tag_template" in task:
            p = (*path, "trace_tag_template")
            v = self.text(task["trace_tag_template"], p)
            if type(v) is not str:
                if v is not None:
                    self.wrong_type(p, "a template string", v)
            else:
                self.check_values(v, p, names=True)
                out["trace_tag_template"] = v
        if CHART_META in task:
            self.check_values(task[CHART_META], (*path, CHART_META))
            out[CHART_META] = task[CHART_META]

    def wait_for(self, task: dict[str, Any], path: Path, label: str, ttype: str) -> dict[str, Any] | None:
        """``wait_for: {inquiry: <id or template>}``: one inquiry the task waits for before it
        runs; action tasks only, not with an iteration, not in a cycle (see ``waits_in_cycles``)."""
        p = (*path, "wait_for")
        value = task["wait_for"]
        if type(value) is not dict:
            self.wrong_type(p, "a mapping {inquiry: ...}", value)
            return None
        for key in value:
            if key not in WAIT_FOR_FIELDS:
                shown = key if type(key) is str else repr(key)
                self.err(
                    "unknown-field",
                    f"{label}: unknown field '{shown}' in wait_for (only 'inquiry')",
                    (*p, str(key)),
                    key=True,
                )
        inquiry = value.get("inquiry")
        if empty(inquiry):
            self.err("missing-field", f"Missing required field: {render_path((*p, 'inquiry'))}", p)
        elif type(inquiry) is str:
            self.check_values(inquiry, (*p, "inquiry"), names=True)
        elif not (type(inquiry) is int and 0 < inquiry <= INT_MAX):
            self.wrong_type((*p, "inquiry"), "an inquiry id (a positive integer) or a template", inquiry)
        if ttype != "action":
            self.err("wait-for", f"{label}: wait_for is only supported on action tasks, not {ttype} tasks", p, key=True)
        for other in ("with_items", "iterate_cache"):
            if other in task:
                self.err(
                    "wait-for", f"{label}: wait_for cannot be used with {other} (one inquiry per task)", p, key=True
                )
        return {"inquiry": inquiry} if not empty(inquiry) else None

    def iterate_cache(self, task: dict[str, Any], path: Path, label: str, ttype: str) -> dict[str, Any] | None:
        """``iterate_cache``: the task runs once per entry of a cache namespace (validator.rs)."""
        p = (*path, "iterate_cache")
        value = task["iterate_cache"]
        if type(value) is not dict:
            self.wrong_type(p, "a mapping {namespace, ...}", value)
            return None
        for key in value:
            if key not in ITERATE_CACHE_FIELDS:
                shown = key if type(key) is str else repr(key)
                self.err(
                    "unknown-field", f"{label}: unknown field '{shown}' in iterate_cache", (*p, str(key)), key=True
                )
        if "with_items" in task:
            self.err("iterate-cache", f"{label} cannot define both with_items and iterate_cache", p, key=True)
        if ttype != "action":
            self.err("iterate-cache", f"{label}: iterate_cache is only supported for action tasks", p, key=True)
        out: dict[str, Any] = {}
        for field in _CACHE_TEXTS:
            v = self.text(value.get(field), (*p, field))
            if v is None:
                continue
            if type(v) is not str:
                self.wrong_type((*p, field), "a string", v)
            else:
                self.check_values(v, (*p, field), names=True)
                out[field] = v
        if not str(out.get("namespace", "")).strip():
            self.err("missing-field", f"{label}: iterate_cache namespace cannot be empty", p)
        out.setdefault("generation", "active")
        size = value.get("page_size", 100)
        if not is_int(size):
            self.wrong_type((*p, "page_size"), "an integer", size)
        elif not 1 <= size <= 1000:
            self.err(
                "range", f"{label}: iterate_cache page_size must be between 1 and 1000, got {size}", (*p, "page_size")
            )
        else:
            out["page_size"] = size
        fresh = value.get("require_fresh", False)
        if type(fresh) is not bool:
            self.wrong_type((*p, "require_fresh"), "a boolean", fresh)
        else:
            out["require_fresh"] = fresh
        return out

    def waits_in_cycles(self, tasks: list[dict[str, Any]], path: Path, names: dict[str, int]) -> None:
        """A task that waits for an inquiry may not be on a cycle of transitions: Attune
        dispatches a task once per workflow execution."""
        edges = {t.get("name"): [d for tr in t.get("next", ()) for d in tr["do"]] for t in tasks}
        for t in tasks:
            start = t.get("name")
            if not t.get("wait_for") or start not in names:
                continue
            seen: set[str] = set()
            stack = list(edges.get(start, ()))
            while stack:
                n = stack.pop()
                if n == start:
                    self.err(
                        "wait-for",
                        f"Task '{start}' waits for an inquiry but is on a cycle of transitions",
                        (*path, names[start], "wait_for"),
                        key=True,
                    )
                    break
                if n not in seen:
                    seen.add(n)
                    stack.extend(edges.get(n, ()))
