"""The walkers' base: reporting, and the checks of free-form values and expressions."""

from __future__ import annotations

import math
from typing import Any

import yaml

from attune.workflows.context import Known, Link
from attune.workflows.diagnostics import Diagnostic, Path, error, render_path, warning
from attune.workflows.expressions import (
    NAMESPACES,
    expression_check,
    expression_error,
    expression_names,
    has_template,
    template_error,
    unclosed,
)
from attune.workflows.limits import INT_MAX, MAX_DEPTH
from attune.workflows.parser import Locator
from attune.workflows.rules import clean, key_part, kind


class Walker:
    """Collects diagnostics (with their data paths) while a workflow is walked."""

    def __init__(self, pack_ref: str, name: str, known: Known, link: Link | None) -> None:
        self.pack_ref = pack_ref
        self.name = name
        self.known_actions = known.actions
        self.known_workflows = known.workflows
        self.link = link
        self.locator: Locator | None = None
        # the bare names expressions may read: namespaces, then the declared vars and parameters
        self.names: frozenset[str] = NAMESPACES
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

    def text(self, value: Any, path: Path) -> Any:
        """A scalar where a string is expected, read as a string as Attune reads it
        (``version: 1`` is "1", with the text of the file: ``1.10`` stays "1.10").
        Anything else is returned as it is."""
        if value is None or type(value) is str or type(value) not in (int, float, bool):
            return value
        if self.locator is not None:
            node = self.locator.node(path)
            if isinstance(node, yaml.ScalarNode) and node.value:
                return node.value
        if type(value) is bool:
            return "true" if value else "false"
        return str(value)

    # -- expressions -------------------------------------------------------
    def check_names(self, text: str, path: Path) -> None:
        """The unknown-variable check of Attune's expression validator, as a warning."""
        unknown = expression_names(text) - self.names
        for name in sorted(unknown) if unknown else ():
            self.warn(
                "unknown-variable",
                f"Unknown variable '{name}' at {render_path(path)}: use 'parameters.{name}' for an input "
                "parameter, or declare it in vars",
                path,
            )

    def check_values(self, value: Any, path: Path, *, names: bool = False) -> None:
        """Walks free-form data that is kept (input, vars, schemas, published values):
        every string's {{ }} blocks must parse (and, with ``names``, read only known names),
        keys must be strings, numbers finite, nesting bounded, so that what is stored is
        plain JSON."""
        if clean(value, 0, self.names if names else None):
            return  # the common case, without building paths
        stack = [(value, path)]
        base = len(path)
        while stack:
            v, p = stack.pop()
            t = type(v)
            if t is str:
                if "{" in v:
                    self.check_template(v, p, names=names)
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

    def warn_unclosed(self, path: Path) -> None:
        self.warn(
            "unclosed-template",
            f"'{{{{' at {render_path(path)} has no '}}}}' after it: Attune keeps it as text, not an expression",
            path,
        )

    def check_template(self, v: str, path: Path, *, names: bool = True) -> None:
        if "{%" in v:
            self.warn(
                "not-an-expression",
                f"'{{% %}}' at {render_path(path)} is Jinja, which Attune does not evaluate: kept as text",
                path,
            )
        if has_template(v):
            if unclosed(v):
                self.warn_unclosed(path)
            msg = template_error(v)
            if msg:
                self.err("expression-syntax", f"Invalid expression at {render_path(path)}: {msg}", path)
            elif names:
                self.check_names(v, path)

    def sound_expression(self, value: str) -> bool:
        """Whether ``check_expression`` has nothing to say of this string (the common case)."""
        sound, names = expression_check(value)
        return sound and names <= self.names and bool(value.strip())

    def check_expression(self, value: Any, path: Path) -> Any:
        """Checks a field that holds one expression; returns its value (a scalar as text)."""
        if type(value) is str:
            if self.sound_expression(value):
                return value  # the common case
        else:
            value = self.text(value, path)
        if type(value) is not str:
            self.wrong_type(path, "an expression string", value)
            return value
        if not value.strip():
            self.err("missing-field", f"Missing required field: {render_path(path)}", path)
            return value
        if unclosed(value):
            self.warn_unclosed(path)
        msg = expression_error(value)
        if msg:
            self.err("expression-syntax", f"Invalid expression at {render_path(path)}: {msg}", path)
        else:
            self.check_names(value, path)
        return value
