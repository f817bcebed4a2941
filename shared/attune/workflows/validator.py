"""Validation rules (SPEC section 4) and normalisation (SPEC section 3).

``validate_document`` walks a parsed workflow once, collecting every
diagnostic (with its data path), and builds the normalised definition: legacy
transitions folded into ``next``, defaults filled in, unknown fields dropped.
The walk is split by level: ``walker`` (reporting, values), ``transitions``,
``tasks``, and the document here; ``rules`` holds the field sets and names.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from attune.workflows.diagnostics import Diagnostic
from attune.workflows.expressions import has_template
from attune.workflows.json_schema import schema_errors
from attune.workflows.limits import LABEL_MAX, NAME_MAX, REF_MAX, VERSION_MAX
from attune.workflows.rules import (
    CANCELLATION_POLICIES,
    TOP_LEVEL_FIELDS,
    VAR_NAME,
    empty,
    is_number,
    kind,
)
from attune.workflows.tasks import TaskWalker


class _Walker(TaskWalker):
    # -- top level ---------------------------------------------------------
    def workflow(self, doc: Any) -> dict[str, Any] | None:
        if not isinstance(doc, dict):
            what = "empty" if doc is None else kind(doc)
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
            if empty(doc.get(req)):
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
        if not empty(version):
            if type(version) is not str:
                hint = f' (quote it: version: "{version}")' if is_number(version) else ""
                self.err("type", f"Field 'version' must be a string, got {kind(version)}{hint}", ("version",))
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
        if tasks is not None and not empty(tasks) and type(tasks) is not list:
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
