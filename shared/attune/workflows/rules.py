"""Field sets, name rules and value tests shared by the workflow walkers (SPEC sections 3 and 4)."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from attune.workflows.expressions import sound_template
from attune.workflows.limits import INT_MAX, MAX_DEPTH

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
# Fields of today's Attune tasks (crates/common/src/workflow/parser.rs, struct Task): kept
# in the stored definition as they are (after their checks).
SCHEDULING_FIELDS = ("permission_set_refs", "worker_selector", "worker_tolerations", "worker_affinity")
CHART_META = "__chart_meta__"
ATTUNE_TASK_FIELDS = frozenset(
    {"wait_for", "iterate_cache", "permission_set_ref", "trace_tag_template", CHART_META, *SCHEDULING_FIELDS}
)
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
        "publish",
        *LEGACY_TRANSITIONS,
        *ATTUNE_TASK_FIELDS,
    }
)
TRANSITION_FIELDS = frozenset({"when", "publish", "do", CHART_META})
WAIT_FOR_FIELDS = frozenset({"inquiry"})
ITERATE_CACHE_FIELDS = frozenset({"namespace", "owner_type", "owner_ref", "generation", "page_size", "require_fresh"})
RETRY_FIELDS = frozenset({"count", "delay", "backoff", "max_delay", "on_error"})
DECISION_FIELDS = frozenset({"when", "next", "default"})

# Used with fullmatch only: "$" would also match before a final newline ("step1\n").
# Attune's action refs (validator.rs, is_valid_action_ref): two or more dotted parts, none
# empty; no control characters here (they cannot be stored).
ACTION_REF = re.compile(r"[^.\x00-\x1f\x7f-\x9f]+(?:\.[^.\x00-\x1f\x7f-\x9f]+)+")
VAR_NAME = re.compile(r"[A-Za-z0-9_-]+")
# Attune's task names (parser.rs, Task.name: 1..255 characters): any text; no control
# characters here.
TASK_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,255}")

TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}


def kind(value: Any) -> str:
    return TYPE_NAMES.get(type(value), type(value).__name__)


def is_int(v: Any) -> bool:
    return type(v) is int and -INT_MAX <= v <= INT_MAX


def is_number(v: Any) -> bool:
    return is_int(v) or (type(v) is float and math.isfinite(v))


def empty(v: Any) -> bool:
    return v is None or (isinstance(v, (str, list, dict)) and len(v) == 0)


def clean(v: Any, depth: int, known: frozenset[str] | None = None) -> bool:
    """True when ``check_values`` would find nothing to report (fast, no paths); with
    ``known``, expressions must also read no other bare name."""
    t = type(v)
    if t is str:
        return "{" not in v or _clean_text(v, known)
    if t is bool or v is None:
        return True
    if t is int:
        return -INT_MAX <= v <= INT_MAX
    if t is float:
        return math.isfinite(v)
    if depth >= MAX_DEPTH:
        return False
    if t is dict:
        for k, x in v.items():
            if type(k) is not str:
                return False
            if type(x) is str:  # most values: checked here, without a call
                if "{" in x and not _clean_text(x, known):
                    return False
            elif not clean(x, depth + 1, known):
                return False
        return True
    if t is list:
        for x in v:
            if type(x) is str:
                if "{" in x and not _clean_text(x, known):
                    return False
            elif not clean(x, depth + 1, known):
                return False
        return True
    return False


def _clean_text(v: str, known: frozenset[str] | None) -> bool:
    """``clean`` of a string holding a '{'."""
    if "{%" in v:
        return False
    if "{{" in v:
        names = sound_template(v)
        return names is not None and (known is None or names <= known)
    return True


def key_part(key: Any) -> str | int:
    """The path step of a key that is not a string: its YAML text, where the locator finds it."""
    if key is None:
        return "null"
    if type(key) is bool:
        return "true" if key else "false"
    return str(key)


def strip_braces(expr: str) -> str:
    s = expr.strip()
    if s.startswith("{{") and s.endswith("}}") and s.count("{{") == 1:
        return s[2:-2].strip()
    return s


MISSING = object()
RARE_TASK_FIELDS = frozenset(
    {"when", "with_items", "batch_size", "concurrency", "timeout", "join", "retry", *ATTUNE_TASK_FIELDS}
)
BOUNDED_INTS = (("batch_size", 1, 1000), ("concurrency", 1, 100))
NOT_NEXT_TRANSITIONS = frozenset({*LEGACY_TRANSITIONS, "decision", "publish"})


@lru_cache(maxsize=65536)
def action_ref_ok(ref: str) -> bool:
    return ACTION_REF.fullmatch(ref) is not None


@lru_cache(maxsize=65536)
def task_name_ok(name: str) -> bool:
    return TASK_NAME.fullmatch(name) is not None


@lru_cache(maxsize=65536)
def var_name_ok(name: str) -> bool:
    return VAR_NAME.fullmatch(name) is not None
