"""The walkers' base: reporting, and the checks of free-form values and expressions."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from attune.workflows.diagnostics import Diagnostic, Path, error, render_path, warning
from attune.workflows.expressions import expression_error, has_template, template_error
from attune.workflows.limits import INT_MAX, MAX_DEPTH
from attune.workflows.rules import clean, key_part, kind


class Walker:
    """Collects diagnostics (with their data paths) while a workflow is walked."""

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
            self.err("type", f"Key {key!r} {where} must be a string (quote it)", (*path, key_part(key)), key=True)
        else:
            self.warn("unknown-field", f"Unknown field '{key}' {where} (ignored)", (*path, key), key=True)

    def wrong_type(self, path: Path, expected: str, value: Any) -> None:
        field = render_path(path)
        self.err("type", f"Field '{field}' must be {expected}, got {kind(value)}", path)

    # -- expressions -------------------------------------------------------
    def check_values(self, value: Any, path: Path) -> None:
        """Walks free-form data that is kept (input, vars, schemas, published values):
        every string holding {{ }} or {% %} must parse, keys must be strings, numbers
        finite, nesting bounded, so that what is stored is plain JSON."""
        if clean(value, 0):
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
                                (*p, key_part(k)),
                                key=True,
                            )
                        else:
                            stack.append((item, (*p, k)))
                else:
                    stack.extend((item, (*p, i)) for i, item in enumerate(v))
            elif t is int and not -INT_MAX <= v <= INT_MAX:
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
