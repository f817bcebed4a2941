"""Task lists and tasks: names, types, actions, iteration, retry, reachability."""

from __future__ import annotations

from typing import Any

from attune.workflows.diagnostics import Path, quote, render_path
from attune.workflows.expressions import has_template
from attune.workflows.rules import (
    ATTUNE_TASK_FIELDS,
    BACKOFFS,
    BOUNDED_INTS,
    RARE_TASK_FIELDS,
    RESERVED_TASK_NAMES,
    RETRY_FIELDS,
    TASK_FIELDS,
    TASK_TYPES,
    action_ref_ok,
    clean,
    empty,
    is_int,
    is_number,
    task_name_ok,
)
from attune.workflows.task_fields import FieldWalker


class TaskWalker(FieldWalker):
    # -- tasks ---------------------------------------------------------------
    def task_list(self, tasks: list[Any], path: Path, *, top: bool = False) -> list[dict[str, Any]]:
        names: dict[str, int] = {}
        for i, task in enumerate(tasks):
            if type(task) is dict:
                name = task.get("name")
                if type(name) is not str:
                    name = self.text(name, (*path, i, "name"))
                if type(name) is str and name:
                    if name in names:
                        self.err(
                            "duplicate-task",
                            f"Duplicate task name '{name}' (first defined at {render_path((*path, names[name]))})",
                            (*path, i, "name"),
                        )
                    else:
                        names[name] = i
        out = [self.task(t, (*path, i), names) for i, t in enumerate(tasks)]
        self.reachability(out, path, names)
        if any("wait_for" in t for t in out):
            self.waits_in_cycles(out, path, names)
        return out

    def task(self, task: Any, path: Path, siblings: dict[str, int]) -> dict[str, Any]:
        if type(task) is not dict:
            self.wrong_type(path, "a task mapping", task)
            return {}
        name = task.get("name")
        if type(name) is not str:
            name = self.text(name, (*path, "name"))
        label = f"Task '{name}'" if type(name) is str and name else f"Task at {render_path(path)}"
        if empty(name):
            self.err("missing-field", f"Missing required field: {render_path((*path, 'name'))}", path)
        elif type(name) is not str:
            self.wrong_type((*path, "name"), "a string", name)
        elif name in RESERVED_TASK_NAMES:
            self.err(
                "reserved-name",
                f"Task name '{name}' is reserved (reserved: {', '.join(sorted(RESERVED_TASK_NAMES))})",
                (*path, "name"),
            )
        elif not task_name_ok(name):
            self.err(
                "invalid-name",
                f"Task name '{quote(name)}' must be 1 to 255 characters without control characters",
                (*path, "name"),
            )

        if not TASK_FIELDS.issuperset(task):
            for key in task:
                if key not in TASK_FIELDS:
                    self.unknown_key(key, path, f"in {label}")

        out: dict[str, Any] = {"name": name if type(name) is str else None}
        ttype = task.get("type", "action")
        if ttype not in TASK_TYPES:
            self.err(
                "range",
                f"{label}: field 'type' must be one of {', '.join(TASK_TYPES)}, got '{ttype}'",
                (*path, "type"),
            )
            ttype = "action"
        out["type"] = ttype

        action = task.get("action")
        if type(action) is not str:
            action = self.text(action, (*path, "action"))
        if ttype in ("action", "workflow"):
            if empty(action):
                self.err(
                    "missing-action",
                    f"{label} has no 'action' (required for {ttype} tasks)",
                    (*path, "action") if "action" in task else path,
                )
            elif type(action) is not str:
                self.wrong_type((*path, "action"), "a string", action)
            elif not action_ref_ok(action):
                self.err(
                    "action-format",
                    f"{label}: action '{quote(action)}' must have the form 'pack.action' (two or more "
                    "dotted parts, none empty)",
                    (*path, "action"),
                )
            elif action not in self.known_actions and action not in self.known_workflows:
                # every workflow is an action too (Attune registers one for each)
                what = "workflow" if ttype == "workflow" else "action"
                self.err("undefined-action", f"{label} references undefined {what} '{action}'", (*path, "action"))
            if type(action) is str:
                out["action"] = action
                if action_ref_ok(action):  # a malformed one never resolves (and may hold NUL)
                    self.deps.add("w:" + action)  # an action or a workflow
        elif action is not None:
            self.warn(
                "unknown-field",
                f"{label}: 'action' is ignored on parallel tasks",
                (*path, "action"),
                key=True,
            )

        inp = task.get("input")
        if inp is not None:
            if type(inp) is not dict:
                self.wrong_type((*path, "input"), "a mapping", inp)
            elif not clean(inp, 0, self.names):  # else nothing to report: no path built
                self.check_values(inp, (*path, "input"), names=True)
        out["input"] = inp if type(inp) is dict else {}

        rare = RARE_TASK_FIELDS.intersection(task)  # most tasks have none of these
        for field in ("when", "with_items"):
            if field in rare:
                out[field] = self.check_expression(task[field], (*path, field))

        for field, lo, hi in BOUNDED_INTS:
            if field in rare:
                v = task[field]
                if not is_int(v):
                    self.wrong_type((*path, field), "an integer", v)
                elif not lo <= v <= hi:
                    self.err(
                        "range",
                        f"{label}: field '{field}' must be between {lo} and {hi}, got {v}",
                        (*path, field),
                    )
                else:
                    out[field] = v

        if "timeout" in rare:
            v = task["timeout"]
            if type(v) is str and has_template(v):  # resolved to seconds when the task runs
                self.check_values(v, (*path, "timeout"), names=True)
                out["timeout"] = v
            elif not is_number(v):
                self.wrong_type((*path, "timeout"), "a number of seconds or a template", v)
            elif v <= 0:
                self.err("range", f"{label}: field 'timeout' must be positive, got {v}", (*path, "timeout"))
            else:
                out["timeout"] = v

        if "join" in rare:
            v = task["join"]
            if not is_int(v):
                self.wrong_type((*path, "join"), "a positive integer", v)
            elif v <= 0:
                self.err("range", f"{label}: field 'join' must be a positive integer, got {v}", (*path, "join"))
            else:
                out["join"] = v

        if "retry" in rare:
            out["retry"] = self.retry(task["retry"], (*path, "retry"), label)

        if not ATTUNE_TASK_FIELDS.isdisjoint(rare):
            self.attune_fields(task, path, label, out)

        sub = task.get("tasks")
        if ttype == "parallel":
            if empty(sub):
                self.err(
                    "missing-subtasks",
                    f"Parallel {label[0].lower()}{label[1:]} has no sub-tasks",
                    (*path, "tasks") if "tasks" in task else path,
                )
            elif type(sub) is not list:
                self.wrong_type((*path, "tasks"), "a list of tasks", sub)
            else:
                out["tasks"] = self.task_list(sub, (*path, "tasks"))
        elif sub is not None:
            self.warn(
                "unknown-field",
                f"{label}: 'tasks' is only used by parallel tasks (ignored)",
                (*path, "tasks"),
                key=True,
            )

        out["next"] = self.transitions(task, path, label, siblings)
        return out

    def retry(self, retry: Any, path: Path, label: str) -> dict[str, Any] | None:
        if type(retry) is not dict:
            self.wrong_type(path, "a mapping", retry)
            return None
        for key in retry:
            if key not in RETRY_FIELDS:
                self.unknown_key(key, path, f"in {label}'s retry")
        out: dict[str, Any] = {}
        count = retry.get("count")
        if count is None:
            self.err("missing-field", f"Missing required field: {render_path((*path, 'count'))}", path)
        elif not is_int(count):
            self.wrong_type((*path, "count"), "an integer", count)
        elif not 1 <= count <= 100:
            self.err("range", f"{label}: retry count must be between 1 and 100, got {count}", (*path, "count"))
        else:
            out["count"] = count
        delay = retry.get("delay", 0)
        if not is_number(delay):
            self.wrong_type((*path, "delay"), "a number of seconds", delay)
            delay = None
        elif delay < 0:
            self.err("range", f"{label}: retry delay must be >= 0, got {delay}", (*path, "delay"))
        else:
            out["delay"] = delay
        backoff = retry.get("backoff", "constant")
        if backoff not in BACKOFFS:
            self.err(
                "range",
                f"{label}: retry backoff must be one of {', '.join(BACKOFFS)}, got '{backoff}'",
                (*path, "backoff"),
            )
        else:
            out["backoff"] = backoff
        if "max_delay" in retry:
            md = retry["max_delay"]
            if not is_number(md):
                self.wrong_type((*path, "max_delay"), "a number of seconds", md)
            elif is_number(delay) and md < delay:
                self.err(
                    "range",
                    f"{label}: retry max_delay ({md}) must be >= delay ({delay})",
                    (*path, "max_delay"),
                )
            else:
                out["max_delay"] = md
        if "on_error" in retry:
            oe = self.text(retry["on_error"], (*path, "on_error"))
            if type(oe) is not str:
                self.wrong_type((*path, "on_error"), "a string", oe)
            else:
                if has_template(oe):
                    self.check_values(oe, (*path, "on_error"))
                out["on_error"] = oe
        return out

    # -- graph ---------------------------------------------------------------
    def reachability(self, tasks: list[dict[str, Any]], path: Path, names: dict[str, int]) -> None:
        if not names:
            return
        edges: dict[str, list[str]] = {}
        targeted: set[str] = set()
        for t in tasks:
            src = t.get("name")
            if src not in names or src in edges:
                continue
            dsts = [dst for tr in t.get("next", ()) for dst in tr["do"] if dst != src]
            edges[src] = dsts
            targeted.update(dsts)
        entries = [n for n in names if n not in targeted]
        if not entries:
            self.warn(
                "no-entry-task",
                "No entry task: every task is the target of a transition, so none starts the workflow",
                path,
            )
            return
        seen = set(entries)
        stack = list(entries)
        while stack:
            for dst in edges.get(stack.pop(), ()):
                if dst not in seen and dst in names:
                    seen.add(dst)
                    stack.append(dst)
        for n, i in names.items():
            if n not in seen:
                self.warn("unreachable-task", f"Task '{n}' is unreachable from any entry task", (*path, i, "name"))
