"""Validation rules (SPEC section 4) and normalisation (SPEC section 3).

``validate_document`` walks a parsed workflow once, collecting every
diagnostic (with its data path), and builds the normalised definition: legacy
transitions folded into ``next``, defaults filled in, unknown fields dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from attune.workflows.diagnostics import Diagnostic, Path, error, render_path, warning
from attune.workflows.expressions import expression_error, has_template, template_error
from attune.workflows.json_schema import schema_errors
from attune.workflows.limits import INT_MAX, LABEL_MAX, MAX_DEPTH, NAME_MAX, REF_MAX, VERSION_MAX

RESERVED_TASK_NAMES = frozenset({"parameters", "vars", "task", "system", "kv", "pack", "item", "batch", "index"})
TASK_TYPES = ("action", "parallel", "workflow")
BACKOFFS = ("constant", "linear", "exponential")
CANCELLATION_POLICIES = ("allow_finish", "cancel_running")
LEGACY_TRANSITIONS = {
    "on_success": "{{ succeeded() }}",
    "on_failure": "{{ failed() }}",
    "on_complete": None,
    "on_timeout": "{{ timed_out() }}",
}
TOP_LEVEL_FIELDS = frozenset(
    {
        "ref",
        "label",
        "description",
        "version",
        "parameters",
        "output",
        "vars",
        "tasks",
        "output_map",
        "tags",
        "cancellation_policy",
    }
)
TASK_FIELDS = frozenset(
    {
        "name",
        "type",
        "action",
        "input",
        "when",
        "with_items",
        "batch_size",
        "concurrency",
        "retry",
        "timeout",
        "join",
        "tasks",
        "next",
        "decision",
        *LEGACY_TRANSITIONS,
    }
)
TRANSITION_FIELDS = frozenset({"when", "publish", "do"})
RETRY_FIELDS = frozenset({"count", "delay", "backoff", "max_delay", "on_error"})
DECISION_FIELDS = frozenset({"when", "next", "default"})

# Used with fullmatch only: "$" would also match before a final newline ("step1\n").
ACTION_REF = re.compile(r"[a-z][a-z0-9_-]*\.[A-Za-z0-9_][A-Za-z0-9_-]*")
VAR_NAME = re.compile(r"[A-Za-z0-9_-]+")
TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_INT_MAX = INT_MAX


def _is_int(v: Any) -> bool:
    return type(v) is int and -_INT_MAX <= v <= _INT_MAX


def _is_number(v: Any) -> bool:
    return _is_int(v) or (type(v) is float and math.isfinite(v))


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, (str, list, dict)) and len(v) == 0)


def _clean(v: Any, depth: int) -> bool:
    """True when ``check_values`` would find nothing to report (fast, no paths)."""
    t = type(v)
    if t is str:
        return not (("{{" in v or "{%" in v) and template_error(v))
    if t is bool or v is None:
        return True
    if t is int:
        return -_INT_MAX <= v <= _INT_MAX
    if t is float:
        return math.isfinite(v)
    if depth >= MAX_DEPTH:
        return False
    if t is dict:
        for k, x in v.items():  # noqa: SIM110 - a loop is faster than all() on this hot path
            if type(k) is not str or not _clean(x, depth + 1):
                return False
        return True
    if t is list:
        for x in v:  # noqa: SIM110 - a loop is faster than all() on this hot path
            if not _clean(x, depth + 1):
                return False
        return True
    return False


def _key_part(key: Any) -> str | int:
    """The path step of a key that is not a string: its YAML text, where the locator finds it."""
    if key is None:
        return "null"
    if type(key) is bool:
        return "true" if key else "false"
    return str(key)


def _strip_braces(expr: str) -> str:
    s = expr.strip()
    if s.startswith("{{") and s.endswith("}}") and s.count("{{") == 1:
        return s[2:-2].strip()
    return s


_MISSING = object()
_RARE_TASK_FIELDS = frozenset({"when", "with_items", "batch_size", "concurrency", "timeout", "join", "retry"})
_BOUNDED_INTS = (("batch_size", 1, 1000), ("concurrency", 1, 100))
_NOT_NEXT_TRANSITIONS = frozenset({*LEGACY_TRANSITIONS, "decision"})


@lru_cache(maxsize=65536)
def _task_name_ok(name: str) -> bool:
    return TASK_NAME.fullmatch(name) is not None


@lru_cache(maxsize=65536)
def _var_name_ok(name: str) -> bool:
    return VAR_NAME.fullmatch(name) is not None


class _Walker:
    def __init__(
        self, pack_ref: str, name: str, known_actions: Collection[str], known_workflows: Collection[str]
    ) -> None:
        self.pack_ref = pack_ref
        self.name = name
        self.known_actions = known_actions
        self.known_workflows = known_workflows
        self.diags: list[Diagnostic] = []
        # what the tasks call ("a:<action ref>", "w:<workflow ref>"): an unchanged
        # file stays valid while all of it still resolves
        self.deps: set[str] = set()

    # -- reporting ---------------------------------------------------------
    def err(self, code: str, message: str, path: Path, *, key: bool = False) -> None:
        self.diags.append(error(code, message, path, at_key=key))

    def warn(self, code: str, message: str, path: Path, *, key: bool = False) -> None:
        self.diags.append(warning(code, message, path, at_key=key))

    def unknown_key(self, key: Any, path: Path, where: str) -> None:
        """A key outside a mapping's fields: ignored with a warning, unless it is not a string
        (``1:``, ``null:``, ``[a, b]:``), which no workflow means: an error."""
        if type(key) is not str:
            self.err("type", f"Key {key!r} {where} must be a string (quote it)", (*path, _key_part(key)), key=True)
        else:
            self.warn("unknown-field", f"Unknown field '{key}' {where} (ignored)", (*path, key), key=True)

    def wrong_type(self, path: Path, expected: str, value: Any) -> None:
        field = render_path(path)
        self.err("type", f"Field '{field}' must be {expected}, got {_kind(value)}", path)

    # -- expressions -------------------------------------------------------
    def check_values(self, value: Any, path: Path) -> None:
        """Walks free-form data that is kept (input, vars, schemas, published values):
        every string holding {{ }} or {% %} must parse, keys must be strings, numbers
        finite, nesting bounded, so that what is stored is plain JSON."""
        if _clean(value, 0):
            return  # the common case, without building paths
        stack = [(value, path)]
        base = len(path)
        while stack:
            v, p = stack.pop()
            t = type(v)
            if t is str:
                if "{" in v and has_template(v):
                    msg = template_error(v)
                    if msg:
                        self.err("expression-syntax", f"Invalid expression at {render_path(p)}: {msg}", p)
            elif t is dict or t is list:
                if len(p) - base > MAX_DEPTH:
                    self.err(
                        "too-deep",
                        f"Value at {render_path(path)} is nested deeper than {MAX_DEPTH} levels",
                        p,
                    )
                    continue
                if t is dict:
                    for k, item in v.items():
                        if type(k) is not str:
                            self.err(
                                "type",
                                f"Key {k!r} at {render_path(p) or 'top level'} must be a string (quote it)",
                                (*p, _key_part(k)),
                                key=True,
                            )
                        else:
                            stack.append((item, (*p, k)))
                else:
                    stack.extend((item, (*p, i)) for i, item in enumerate(v))
            elif t is int and not -_INT_MAX <= v <= _INT_MAX:
                self.err("type", f"Value at {render_path(p)} is an integer too large for JSON (quote it)", p)
            elif t is float and not math.isfinite(v):
                self.err("type", f"Value at {render_path(p)} is {v}, which JSON cannot hold (quote it)", p)
            elif t is not int and t is not float and t is not bool and v is not None:
                # a YAML type JSON has no room for (a !!set...): never stored as something else
                self.err("type", f"Value at {render_path(p)} is a YAML {t.__name__}, which JSON cannot hold", p)

    def check_expression(self, value: Any, path: Path) -> None:
        if type(value) is not str:
            self.wrong_type(path, "an expression string", value)
            return
        if not value.strip():
            self.err("missing-field", f"Missing required field: {render_path(path)}", path)
            return
        msg = expression_error(value)
        if msg:
            self.err("expression-syntax", f"Invalid expression at {render_path(path)}: {msg}", path)

    # -- top level ---------------------------------------------------------
    def workflow(self, doc: Any) -> dict[str, Any] | None:
        if not isinstance(doc, dict):
            what = "empty" if doc is None else _kind(doc)
            self.err("not-a-mapping", f"Workflow file must be a mapping of fields, got {what}", ())
            return None
        out: dict[str, Any] = {"ref": f"{self.pack_ref}.{self.name}", "name": self.name}

        for key in doc:
            if key not in TOP_LEVEL_FIELDS:
                if type(key) is not str:
                    self.unknown_key(key, (), "at top level")
                else:
                    self.warn("unknown-field", f"Unknown field '{key}' (ignored)", (key,), key=True)

        for req in ("version", "tasks"):
            if _empty(doc.get(req)):
                self.err("missing-field", f"Missing required field: {req}", (req,) if req in doc else ())

        ref = doc.get("ref")
        expected_ref = out["ref"]
        if len(expected_ref) > REF_MAX or len(self.name) > NAME_MAX:
            self.err(
                "ref-too-long",
                f"The ref '{expected_ref[:100]}...' is {len(expected_ref)} characters long, more than the "
                f"{REF_MAX} the database holds: shorten the file name",
                (),
            )
        if ref is not None:
            if type(ref) is not str:
                self.wrong_type(("ref",), "a string", ref)
            elif ref != expected_ref:
                self.err(
                    "ref-mismatch",
                    f"Field 'ref' is '{ref}' but must be '{expected_ref}' (pack ref and file name)",
                    ("ref",),
                )

        label = doc.get("label")
        if label is not None and type(label) is not str:
            self.wrong_type(("label",), "a string", label)
        elif type(label) is str and len(label) > LABEL_MAX:
            self.err("range", f"Field 'label' must be at most {LABEL_MAX} characters, got {len(label)}", ("label",))
        out["label"] = label if type(label) is str and label else self.name

        desc = doc.get("description")
        if desc is not None and type(desc) is not str:
            self.wrong_type(("description",), "a string", desc)
        out["description"] = desc if type(desc) is str else None

        version = doc.get("version")
        if not _empty(version):
            if type(version) is not str:
                hint = f' (quote it: version: "{version}")' if _is_number(version) else ""
                self.err("type", f"Field 'version' must be a string, got {_kind(version)}{hint}", ("version",))
            elif len(version) > VERSION_MAX:
                self.err("range", f"Field 'version' must be at most {VERSION_MAX} characters", ("version",))
        out["version"] = version if type(version) is str else None

        for field in ("parameters", "output"):
            schema = doc.get(field)
            if schema is None:
                out[field] = None
                continue
            if type(schema) is not dict:
                self.wrong_type((field,), "a JSON Schema mapping", schema)
            else:
                for sub, message in schema_errors(schema):
                    self.err(
                        "invalid-schema",
                        f"Field '{field}' is not a valid JSON Schema: {message}",
                        (field, *sub),
                    )
                self.check_values(schema, (field,))
            out[field] = schema if type(schema) is dict else None

        vars_ = doc.get("vars")
        if vars_ is not None:
            if type(vars_) is not dict:
                self.wrong_type(("vars",), "a mapping of names to values", vars_)
            else:
                for k in vars_:
                    if type(k) is str and not VAR_NAME.fullmatch(k):
                        self.err(
                            "invalid-name",
                            f"Variable name '{k}' may only hold letters, digits, '_' and '-'",
                            ("vars", k),
                            key=True,
                        )
                self.check_values(vars_, ("vars",))
        out["vars"] = vars_ if type(vars_) is dict else {}

        tasks = doc.get("tasks")
        if tasks is not None and not _empty(tasks) and type(tasks) is not list:
            self.wrong_type(("tasks",), "a list of tasks", tasks)
        out["tasks"] = self.task_list(tasks, ("tasks",), top=True) if type(tasks) is list else []

        omap = doc.get("output_map")
        if omap is not None:
            if type(omap) is not dict:
                self.wrong_type(("output_map",), "a mapping of names to strings", omap)
            else:
                for k, v in omap.items():
                    if type(k) is not str:
                        self.unknown_key(k, ("output_map",), "in output_map")
                    elif type(v) is not str:
                        self.wrong_type(("output_map", k), "a string", v)
                    elif has_template(v):
                        self.check_values(v, ("output_map", k))
        out["output_map"] = omap if type(omap) is dict else {}

        tags = doc.get("tags")
        if tags is not None:
            if type(tags) is not list:
                self.wrong_type(("tags",), "a list of strings", tags)
            else:
                for i, tag in enumerate(tags):
                    if type(tag) is not str:
                        self.wrong_type(("tags", i), "a string", tag)
        out["tags"] = [t for t in tags if type(t) is str] if type(tags) is list else []

        policy = doc.get("cancellation_policy", "allow_finish")
        if policy not in CANCELLATION_POLICIES:
            self.err(
                "range",
                f"Field 'cancellation_policy' must be one of {', '.join(CANCELLATION_POLICIES)}, got '{policy}'",
                ("cancellation_policy",),
            )
        out["cancellation_policy"] = policy if policy in CANCELLATION_POLICIES else "allow_finish"
        return out

    # -- tasks ---------------------------------------------------------------
    def task_list(self, tasks: list[Any], path: Path, *, top: bool = False) -> list[dict[str, Any]]:
        names: dict[str, int] = {}
        for i, task in enumerate(tasks):
            if type(task) is dict:
                name = task.get("name")
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
        return out

    def task(self, task: Any, path: Path, siblings: dict[str, int]) -> dict[str, Any]:
        if type(task) is not dict:
            self.wrong_type(path, "a task mapping", task)
            return {}
        name = task.get("name")
        label = f"Task '{name}'" if type(name) is str and name else f"Task at {render_path(path)}"
        if _empty(name):
            self.err("missing-field", f"Missing required field: {render_path((*path, 'name'))}", path)
        elif type(name) is not str:
            self.wrong_type((*path, "name"), "a string", name)
        elif name in RESERVED_TASK_NAMES:
            self.err(
                "reserved-name",
                f"Task name '{name}' is reserved (reserved: {', '.join(sorted(RESERVED_TASK_NAMES))})",
                (*path, "name"),
            )
        elif not _task_name_ok(name):
            self.err(
                "invalid-name",
                f"Task name '{name}' must start with a letter or '_' and hold only letters, digits, '_' and '-'",
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
        if ttype in ("action", "workflow"):
            if _empty(action):
                self.err(
                    "missing-action",
                    f"{label} has no 'action' (required for {ttype} tasks)",
                    (*path, "action") if "action" in task else path,
                )
            elif type(action) is not str:
                self.wrong_type((*path, "action"), "a string", action)
            elif not ACTION_REF.fullmatch(action):
                self.err(
                    "action-format",
                    f"{label}: action '{action}' must have the form 'pack.action'",
                    (*path, "action"),
                )
            elif ttype == "action" and action not in self.known_actions:
                self.err("undefined-action", f"{label} references undefined action '{action}'", (*path, "action"))
            elif ttype == "workflow" and action not in self.known_workflows and action not in self.known_actions:
                self.err("undefined-action", f"{label} references undefined workflow '{action}'", (*path, "action"))
            if type(action) is str:
                out["action"] = action
                if ACTION_REF.fullmatch(action):  # a malformed one never resolves (and may hold NUL)
                    self.deps.add(("w:" if ttype == "workflow" else "a:") + action)
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
            else:
                self.check_values(inp, (*path, "input"))
        out["input"] = inp if type(inp) is dict else {}

        rare = _RARE_TASK_FIELDS.intersection(task)  # most tasks have none of these
        for field in ("when", "with_items"):
            if field in rare:
                self.check_expression(task[field], (*path, field))
                out[field] = task[field]

        for field, lo, hi in _BOUNDED_INTS:
            if field in rare:
                v = task[field]
                if not _is_int(v):
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
            if not _is_number(v):
                self.wrong_type((*path, "timeout"), "a number of seconds", v)
            elif v <= 0:
                self.err("range", f"{label}: field 'timeout' must be positive, got {v}", (*path, "timeout"))
            else:
                out["timeout"] = v

        if "join" in rare:
            v = task["join"]
            if not _is_int(v):
                self.wrong_type((*path, "join"), "a positive integer", v)
            elif v <= 0:
                self.err("range", f"{label}: field 'join' must be a positive integer, got {v}", (*path, "join"))
            else:
                out["join"] = v

        if "retry" in rare:
            out["retry"] = self.retry(task["retry"], (*path, "retry"), label)

        sub = task.get("tasks")
        if ttype == "parallel":
            if _empty(sub):
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
        elif not _is_int(count):
            self.wrong_type((*path, "count"), "an integer", count)
        elif not 1 <= count <= 100:
            self.err("range", f"{label}: retry count must be between 1 and 100, got {count}", (*path, "count"))
        else:
            out["count"] = count
        delay = retry.get("delay", 0)
        if not _is_number(delay):
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
            if not _is_number(md):
                self.wrong_type((*path, "max_delay"), "a number of seconds", md)
            elif _is_number(delay) and md < delay:
                self.err(
                    "range",
                    f"{label}: retry max_delay ({md}) must be >= delay ({delay})",
                    (*path, "max_delay"),
                )
            else:
                out["max_delay"] = md
        if "on_error" in retry:
            oe = retry["on_error"]
            if type(oe) is not str:
                self.wrong_type((*path, "on_error"), "a string", oe)
            else:
                if has_template(oe):
                    self.check_values(oe, (*path, "on_error"))
                out["on_error"] = oe
        return out

    # -- transitions -------------------------------------------------------
    def target(self, value: Any, path: Path, label: str, siblings: dict[str, int]) -> str | None:
        if type(value) is not str or not value:
            self.wrong_type(path, "a task name", value)
            return None
        if value not in siblings:
            self.err("undefined-task", f"{label} transitions to undefined task '{value}'", path)
        return value

    def transitions(
        self, task: dict[str, Any], path: Path, label: str, siblings: dict[str, int]
    ) -> list[dict[str, Any]]:
        has_next = "next" in task
        if has_next and _NOT_NEXT_TRANSITIONS.isdisjoint(task):
            return self.next_list(task["next"], (*path, "next"), label, siblings)
        legacy = [k for k in LEGACY_TRANSITIONS if k in task]
        for k in legacy:
            note = " and ignored because 'next' is present" if has_next else ": use 'next'"
            self.warn("legacy-transition", f"{label}: field '{k}' is deprecated{note}", (*path, k), key=True)
        if "decision" in task:
            note = " and ignored because 'next' is present" if has_next else ": use 'next' with 'when'"
            self.warn(
                "legacy-transition",
                f"{label}: field 'decision' is deprecated{note}",
                (*path, "decision"),
                key=True,
            )

        if has_next:
            return self.next_list(task["next"], (*path, "next"), label, siblings)

        out: list[dict[str, Any]] = []
        for k in legacy:
            target = self.target(task[k], (*path, k), label, siblings)
            if target is not None:
                cond = LEGACY_TRANSITIONS[k]
                out.append({"when": cond, "publish": [], "do": [target]} if cond else {"publish": [], "do": [target]})
        if "decision" in task:
            out.extend(self.decision(task["decision"], (*path, "decision"), label, siblings))
        return out

    def next_list(self, nxt: Any, path: Path, label: str, siblings: dict[str, int]) -> list[dict[str, Any]]:
        if nxt is None:
            return []
        if type(nxt) is not list:
            self.wrong_type(path, "a list of transitions", nxt)
            return []
        out = []
        for i, tr in enumerate(nxt):
            if type(tr) is not dict:
                self.wrong_type((*path, i), "a transition mapping", tr)
                continue
            if not TRANSITION_FIELDS.issuperset(tr):
                for key in tr:
                    if key not in TRANSITION_FIELDS:
                        self.unknown_key(key, (*path, i), f"in {label}'s transition")
            item: dict[str, Any] = {}
            when = tr.get("when", _MISSING)
            if when is not _MISSING:
                if type(when) is not str or not when.strip() or expression_error(when):
                    self.check_expression(when, (*path, i, "when"))
                item["when"] = when
            pub = tr.get("publish")
            item["publish"] = [] if pub is None else self.publish(pub, (*path, i, "publish"))
            do = tr.get("do")
            if type(do) is str:
                do = [do]  # a single task name
            if do is None:
                item["do"] = []
            elif type(do) is not list:
                self.wrong_type((*path, i, "do"), "a list of task names", do)
                item["do"] = []
            else:
                for t in do:
                    if type(t) is not str or t not in siblings:  # report, with paths
                        item["do"] = [
                            t for j, t in enumerate(do) if self.target(t, (*path, i, "do", j), label, siblings)
                        ]
                        break
                else:
                    item["do"] = list(do)
            out.append(item)
        return out

    def publish(self, pub: Any, path: Path) -> list[str | dict[str, Any]]:
        if pub is None:
            return []
        if type(pub) is dict:  # a mapping is accepted as shorthand for a list of one-key mappings
            pub = [{k: v} for k, v in pub.items()]
        if type(pub) is not list:
            self.wrong_type(path, "a list of names or {name: value}", pub)
            return []
        out: list[str | dict[str, Any]] = []
        for i, item in enumerate(pub):
            if type(item) is dict and len(item) == 1:
                ((k, v),) = item.items()
                if type(k) is str and _var_name_ok(k) and _clean(v, 0):
                    out.append(item)  # the common case
                    continue
            p = (*path, i)
            if type(item) is str:
                if not _var_name_ok(item):  # a name published from the result
                    self.err(
                        "invalid-name",
                        f"Published name '{item}' may only hold letters, digits, '_' and '-'",
                        p,
                    )
                out.append(item)
            elif type(item) is dict and len(item) == 1:
                ((k, v),) = item.items()
                if type(k) is not str or not _var_name_ok(k):
                    self.err(
                        "invalid-name",
                        f"Published name '{k}' may only hold letters, digits, '_' and '-'",
                        (*p, k),
                        key=True,
                    )
                self.check_values(v, (*p, k))
                out.append(item)
            else:
                self.wrong_type(p, "a name or a one-key mapping {name: value}", item)
        return out

    def decision(self, dec: Any, path: Path, label: str, siblings: dict[str, int]) -> list[dict[str, Any]]:
        if type(dec) is not list:
            self.wrong_type(path, "a list of branches", dec)
            return []
        branches: list[tuple[str | None, str]] = []
        default: str | None = None
        defaults = 0
        for i, br in enumerate(dec):
            p = (*path, i)
            if type(br) is not dict:
                self.wrong_type(p, "a branch mapping {when, next} or {default}", br)
                continue
            for key in br:
                if key not in DECISION_FIELDS:
                    self.unknown_key(key, p, f"in {label}'s decision")
            is_default = "default" in br
            if is_default:
                defaults += 1
                if defaults == 2:
                    self.err("decision-defaults", f"{label}: decision has more than one default branch", p)
                target_value = br.get("next", br["default"])
                target = self.target(target_value, (*p, "next" if "next" in br else "default"), label, siblings)
                if target and defaults == 1:
                    default = target
            elif "when" not in br:
                self.err("decision-branch", f"{label}: decision branch {i} has neither 'when' nor 'default'", p)
            else:
                self.check_expression(br["when"], (*p, "when"))
                if "next" not in br:
                    self.err("missing-field", f"Missing required field: {render_path((*p, 'next'))}", p)
                    continue
                target = self.target(br["next"], (*p, "next"), label, siblings)
                if target and type(br["when"]) is str:
                    branches.append((br["when"], target))
        out: list[dict[str, Any]] = [{"when": w, "publish": [], "do": [t]} for w, t in branches]
        if default is not None:
            if branches:
                others = " or ".join(f"({_strip_braces(w)})" for w, _ in branches if w)
                out.append({"when": f"{{{{ not ({others}) }}}}", "publish": [], "do": [default]})
            else:
                out.append({"publish": [], "do": [default]})
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


def validate_document(
    doc: Any,
    *,
    pack_ref: str,
    name: str,
    known_actions: Collection[str],
    known_workflows: Collection[str] = (),
) -> tuple[dict[str, Any] | None, list[Diagnostic], list[str]]:
    """Returns (normalised definition, diagnostics, refs the tasks call).
    The definition is None when ``doc`` is not a mapping."""
    w = _Walker(pack_ref, name, known_actions, known_workflows)
    definition = w.workflow(doc)
    return definition, w.diags, sorted(w.deps)
