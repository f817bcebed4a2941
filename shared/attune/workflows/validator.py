"""Validation rules (SPEC section 4) and normalisation (SPEC section 3).

``validate_document`` walks a parsed workflow once, collecting every
diagnostic (with its data path), and builds the normalised definition: legacy
transitions folded into ``next``, defaults filled in, unknown fields dropped.
The walk is split by level: ``walker`` (reporting, values), ``transitions``,
``tasks``, and the document here; ``rules`` holds the field sets and names.
"""

from __future__ import annotations

from typing import Any

from attune.workflows.context import Known, Link
from attune.workflows.diagnostics import Diagnostic
from attune.workflows.json_schema import flat_to_json_schema, is_flat_schema, parameter_names, schema_errors
from attune.workflows.limits import LABEL_MAX, NAME_MAX, REF_MAX, VERSION_MAX
from attune.workflows.parser import Locator
from attune.workflows.rules import (
    CANCELLATION_POLICIES,
    TOP_LEVEL_FIELDS,
    VAR_NAME,
    empty,
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

        supplied = self.linked_fields(doc)
        self.ref(doc, out["ref"])

        label = self.text(supplied.get("label", doc.get("label")), ("label",))
        if label is not None and type(label) is not str:
            self.wrong_type(("label",), "a string", label)
        elif type(label) is str and len(label) > LABEL_MAX:
            self.err("range", f"Field 'label' must be at most {LABEL_MAX} characters, got {len(label)}", ("label",))
        out["label"] = label if type(label) is str and label else self.name

        desc = self.text(supplied.get("description", doc.get("description")), ("description",))
        if desc is not None and type(desc) is not str:
            self.wrong_type(("description",), "a string", desc)
        out["description"] = desc if type(desc) is str else None

        version = self.text(doc.get("version"), ("version",))
        if not empty(version):
            if type(version) is not str:
                self.wrong_type(("version",), "a string", version)
            elif len(version) > VERSION_MAX:
                self.err("range", f"Field 'version' must be at most {VERSION_MAX} characters", ("version",))
        out["version"] = version if type(version) is str else None

        for field in ("parameters", "output"):
            source = f" (from {self.link.action_file})" if self.link is not None and field in supplied else ""
            out[field] = self.schema(field, supplied.get(field, doc.get(field)), source)

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
        self.names = self.names.union(k for k in out["vars"] if type(k) is str).union(
            parameter_names(out["parameters"])
        )

        tasks = doc.get("tasks")
        if tasks is not None and not empty(tasks) and type(tasks) is not list:
            self.wrong_type(("tasks",), "a list of tasks", tasks)
        out["tasks"] = self.task_list(tasks, ("tasks",), top=True) if type(tasks) is list else []

        omap = doc.get("output_map")
        if omap is not None:
            if type(omap) is not dict:
                self.wrong_type(("output_map",), "a mapping of names to strings", omap)
            else:
                omap = dict(omap)
                for k, v in omap.items():
                    v = omap[k] = self.text(v, ("output_map", k))
                    if type(k) is not str:
                        self.unknown_key(k, ("output_map",), "in output_map")
                    elif type(v) is not str:
                        self.wrong_type(("output_map", k), "a string", v)
                    elif "{" in v:
                        self.check_values(v, ("output_map", k))
        out["output_map"] = omap if type(omap) is dict else {}

        tags = supplied.get("tags", doc.get("tags"))
        if tags is not None:
            if type(tags) is not list:
                self.wrong_type(("tags",), "a list of strings", tags)
            else:
                tags = [self.text(tag, ("tags", i)) for i, tag in enumerate(tags)]
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

    def ref(self, doc: dict[Any, Any], expected_ref: str) -> None:
        ref = self.text(doc.get("ref"), ("ref",))
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
        link = self.link
        if link is not None and link.ref != expected_ref:
            self.warn(
                "link-mismatch",
                f"'{link.action_file}' names this file as its workflow_file with the ref '{link.ref}', but "
                f"the workflow's ref is '{expected_ref}' (from the file name)",
                ("ref",) if "ref" in doc else (),
            )

    def linked_fields(self, doc: dict[Any, Any]) -> dict[str, Any]:
        """The fields the linked action file supplies (Attune's pack loader: the action's
        parameters and output win; its label, description and tags fill in those the workflow
        file leaves out). Each disagreement is a warning naming both files."""
        link = self.link
        if link is None:
            return {}
        supplied: dict[str, Any] = {}
        for field, value in link.fields.items():
            mine = doc.get(field)
            action_wins = field in ("parameters", "output")
            if mine is None or mine == value:
                supplied[field] = value
                continue
            if action_wins:
                supplied[field] = value
            used = link.action_file if action_wins else "this workflow file"
            self.warn(
                "link-mismatch",
                f"Field '{field}' differs between '{link.action_file}' and this workflow file: "
                f"the value of {used} is used (as in Attune)",
                (field,),
                key=True,
            )
        return supplied

    def schema(self, field: str, schema: Any, source: str = "") -> dict[str, Any] | None:
        """``parameters``/``output``: a JSON Schema, or Attune's flat form normalised into one."""
        if schema is None:
            return None
        if type(schema) is not dict:
            self.wrong_type((field,), "a JSON Schema mapping", schema)
            return None
        if is_flat_schema(schema):
            self.warn(
                "flat-schema",
                f"Field '{field}'{source} is in Attune's flat form (name -> property schema): read as the "
                "JSON Schema of an object with those properties",
                (field,),
                key=True,
            )
            self.check_values(schema, (field,))
            normalised = flat_to_json_schema(schema)
            for sub, message in schema_errors(normalised):
                # the flat entry's path in the file: properties.<name>... is <name>...
                at = sub[1:] if len(sub) > 1 and sub[0] == "properties" else ()
                message = f"Field '{field}'{source} is not a valid JSON Schema: {message}"
                self.err("invalid-schema", message, (field, *at))
            return normalised
        for sub, message in schema_errors(schema):
            self.err("invalid-schema", f"Field '{field}'{source} is not a valid JSON Schema: {message}", (field, *sub))
        self.check_values(schema, (field,))
        return schema


def validate_document(
    doc: Any,
    *,
    pack_ref: str,
    name: str,
    known: Known,
    link: Link | None = None,
    locator: Locator | None = None,
) -> tuple[dict[str, Any] | None, list[Diagnostic], list[str]]:
    """Returns (normalised definition, diagnostics, refs the tasks call).
    The definition is None when ``doc`` is not a mapping. ``link``: the action file that
    names this workflow file (Attune's action-linked layout); ``locator``: the file's nodes,
    for the text of scalars read as strings."""
    w = _Walker(pack_ref, name, known, link)
    w.locator = locator
    definition = w.workflow(doc)
    return definition, w.diags, sorted(w.deps)
