"""Files -> validated, normalised definitions or precise diagnostics (no database, no network)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from attune.workflows.context import LINKED_FIELDS, Known, Link
from attune.workflows.diagnostics import TOO_MANY, Diagnostic, error, limit_diagnostics, warning
from attune.workflows.limits import (
    ENTRY_POINT_MAX,
    LABEL_MAX,
    REF_MAX,
    RUNNER_TYPE_MAX,
    json_problems,
    may_hold_nul,
    nul_paths,
)
from attune.workflows.loader import WORKFLOW_EXTENSIONS, PackFiles, SourceFile
from attune.workflows.parser import Locator, decode, parse_yaml
from attune.workflows.validator import validate_document


@dataclass(slots=True)
class WorkflowResult:
    ref: str
    name: str
    file: str
    content_hash: str
    definition: dict[str, Any] | None  # None when the workflow has errors
    diagnostics: list[Diagnostic]
    deps: list[str] = field(default_factory=list)  # action/workflow refs its tasks call
    canonical: bytes | None = None  # the definition's JSON, keys sorted: what is stored and hashed

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return self.definition is not None


@dataclass(slots=True)
class ActionResult:
    ref: str
    name: str
    file: str
    content_hash: str
    meta: dict[str, Any] | None  # label, description, runner_type, entry_point, parameters
    diagnostics: list[Diagnostic]
    # its workflow_file (Attune's action-linked layout): (the file's path in the pack, the link)
    link: tuple[str, Link] | None = None


@dataclass(slots=True)
class PackReport:
    pack_ref: str
    workflows: list[WorkflowResult] = field(default_factory=list)
    actions: list[ActionResult] = field(default_factory=list)
    notes: list[Diagnostic] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(1 for w in self.workflows if not w.ok)


def _place(diags: list[Diagnostic], text: str | None, locator: Locator | None, file: str) -> None:
    for d in diags:
        d.file = file
        if d.line is None:
            if locator is not None and text is not None:
                d.line, d.column = locator.position(d.path, key=d.at_key)
            else:
                d.line, d.column = 1, 1


def _nul_errors(doc: Any, text: str) -> list[Diagnostic]:
    """NUL in any string or key of the document: Postgres stores none (text or JSON)."""
    if not may_hold_nul(text):
        return []
    return [
        error("nul-character", "Text holds a NUL character (\\0), which cannot be stored", path)
        for path in nul_paths(doc)
    ]


def _unstorable(definition: dict[str, Any]) -> tuple[list[Diagnostic], bytes | None]:
    """The last word before a definition is called valid: it is JSON the database stores.
    The rules above already refuse all of this; a gap in them is a diagnostic, never a
    failed write of the whole pack. Returns the definition's canonical JSON (keys sorted:
    what is stored and hashed) when it is storable."""
    try:
        dumped = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError: a type, a key, a number, a surrogate
        return [error("not-storable", f"The workflow cannot be stored as JSON: {exc}")], None
    if b"\\u0000" in dumped and nul_paths(definition):
        return [error("nul-character", "The workflow holds a NUL character (\\0), which cannot be stored")], None
    return [], dumped


def _order(d: Diagnostic) -> tuple[bool, int, int]:
    """By position; the note on diagnostics left out comes last."""
    return d.code == TOO_MANY, d.line or 0, d.column or 0


def check_workflow(
    data: bytes, *, file: str, pack_ref: str, name: str, known: Known, content_hash: str = ""
) -> WorkflowResult:
    ref = f"{pack_ref}.{name}"
    text, problem = decode(data)
    if text is None:
        assert problem is not None
        _place([problem], None, None, file)
        return WorkflowResult(ref, name, file, content_hash, None, [problem])
    locator = Locator(text)
    doc, diags = parse_yaml(text, locator)
    definition = None
    canonical: bytes | None = None
    deps: list[str] = []
    if not any(d.is_error for d in diags):
        definition, more, deps = validate_document(
            doc, pack_ref=pack_ref, name=name, known=known, link=known.links.get(file), locator=locator
        )
        diags.extend(more)
        diags.extend(_nul_errors(doc, text))
        if definition is not None and not any(d.is_error for d in diags):
            unstorable, canonical = _unstorable(definition)
            diags.extend(unstorable)
    if any(d.is_error for d in diags):
        definition = canonical = None
    if diags:
        diags = limit_diagnostics(diags)  # before placing: placing is the costly part
        _place(diags, text, locator, file)
        diags.sort(key=_order)
    return WorkflowResult(ref, name, file, content_hash, definition, diags, deps, canonical)


def _unreadable(f: SourceFile) -> list[Diagnostic]:
    return [f.problem] if f.problem is not None else []


# Attune's action refs: two or more dotted parts, none empty; no control characters here.
_ACTION_REF = re.compile(r"[^.\x00-\x1f\x7f-\x9f]+(?:\.[^.\x00-\x1f\x7f-\x9f]+)+")
_ACTION_WIDTHS = (("label", LABEL_MAX), ("runner_type", RUNNER_TYPE_MAX), ("entry_point", ENTRY_POINT_MAX))


def check_actions(files: Sequence[SourceFile], pack_ref: str) -> list[ActionResult]:
    """Every action file of a pack (in listing order). Two readable files declaring one ref
    (``ref: p.x`` in actions/y.yaml beside actions/x.yaml): the first keeps it, each later
    one is an error and registers nothing (as two workflow files of one ref); the
    registry holds one row per ref, and storing both failed the whole pack's sync."""
    out: list[ActionResult] = []
    first: dict[str, str] = {}
    for f in files:
        a = check_action(f, pack_ref)
        if a.meta is not None:
            claimed_by = first.setdefault(a.ref, a.file)
            if claimed_by != a.file:
                message = f"'{a.file}' and '{claimed_by}' declare the same action ref '{a.ref}'"
                a.diagnostics.append(error("duplicate-ref", message, file=a.file, line=1, column=1))
                a.meta = None
                a.link = None
        out.append(a)
    return out


def check_action(f: SourceFile, pack_ref: str) -> ActionResult:
    """Reads an action's metadata; its ref is its ``ref`` field or ``<pack>.<file stem>``."""
    if f.data is None:
        return ActionResult(f.ref, f.name, f.path, f.content_hash, None, _unreadable(f))
    text, problem = decode(f.data)
    if text is None:
        assert problem is not None
        _place([problem], None, None, f.path)
        return ActionResult(f.ref, f.name, f.path, f.content_hash, None, [problem])
    locator = Locator(text)
    doc, diags = parse_yaml(text, locator)
    ref = f.ref
    meta: dict[str, Any] | None = None
    link = None
    if not any(d.is_error for d in diags):
        if not isinstance(doc, dict):
            diags.append(error("not-a-mapping", "Action file must be a mapping of fields"))
        else:
            declared = doc.get("ref")
            if declared is not None and type(declared) is not str:
                diags.append(error("type", "Field 'ref' must be a string", ("ref",)))
            elif declared:
                if not _ACTION_REF.fullmatch(declared) or declared.split(".", 1)[0] != pack_ref:
                    diags.append(
                        error(
                            "ref-mismatch",
                            f"Action ref '{declared}' must be '{pack_ref}.<name>': dotted parts, not empty, "
                            "no control characters",
                            ("ref",),
                        )
                    )
                else:
                    ref = declared
            if len(ref) > REF_MAX:
                diags.append(
                    error("ref-too-long", f"Action ref is {len(ref)} characters long, more than {REF_MAX}", ("ref",))
                )
            meta = {
                k: doc.get(k) if isinstance(doc.get(k), str) else None
                for k in ("label", "description", "runner_type", "entry_point")
            }
            for k, most in _ACTION_WIDTHS:
                value = meta[k]
                if value is not None and len(value) > most:
                    message = f"Field '{k}' must be at most {most} characters, got {len(value)}"
                    diags.append(error("range", message, (k,)))
            params = doc.get("parameters")
            meta["parameters"] = params if isinstance(params, dict) else None
            for key in doc:
                if type(key) is not str:
                    diags.append(error("type", f"Key {key!r} at top level must be a string (quote it)", (str(key),)))
            if meta["parameters"] is not None:
                for path, message in json_problems(params, ("parameters",)):
                    diags.append(error("type", message, path))
            diags.extend(_nul_errors(doc, text))
            link = _link(doc, f.path, ref, diags)
    if any(d.is_error for d in diags):
        meta = None
        link = None
    diags = limit_diagnostics(diags)
    _place(diags, text, locator, f.path)
    return ActionResult(ref, f.name, f.path, f.content_hash, meta, diags, link)


def taken_error(a: ActionResult) -> Diagnostic:
    """An action whose ref another pack already holds: it stays that pack's (never taken
    over), so this file's action is not registered."""
    message = f"Action ref '{a.ref}' is registered by another pack: it stays that pack's, this file is not registered"
    return error("ref-taken", message, ("ref",), line=1, column=1, file=a.file)


def _link(doc: dict[Any, Any], action_file: str, ref: str, diags: list[Diagnostic]) -> tuple[str, Link] | None:
    """The workflow file an action names (``workflow_file``, relative to ``actions/``, as in
    Attune's pack loader) and the fields it supplies to it."""
    target = doc.get("workflow_file")
    if target is None:
        return None
    if type(target) is not str or not target.strip():
        message = "Field 'workflow_file' must be a path such as workflows/<name>.workflow.yaml (ignored)"
        diags.append(warning("workflow-file", message, ("workflow_file",)))
        return None
    path = posixpath.normpath(posixpath.join("actions", target))
    if target.startswith("/") or path == ".." or path.startswith("../") or not path.endswith(WORKFLOW_EXTENSIONS):
        message = f"Field 'workflow_file' ('{target}') must name a .yaml or .yml file inside the pack (ignored)"
        diags.append(warning("workflow-file", message, ("workflow_file",)))
        return None
    fields = {k: doc[k] for k in LINKED_FIELDS if doc.get(k) is not None}
    return path, Link(action_file, ref, fields)


def links_of(actions: list[ActionResult]) -> dict[str, Link]:
    """Workflow file path -> the action that links it (the first one, in file order)."""
    out: dict[str, Link] = {}
    for a in actions:
        if a.link is not None:
            out.setdefault(*a.link)
    return out


def missing_links(actions: list[ActionResult], workflow_paths: Collection[str]) -> list[Diagnostic]:
    """A warning for each action whose ``workflow_file`` is not one of the pack's workflow files."""
    listed = set(workflow_paths)
    out = []
    for a in actions:
        if a.link is not None and a.link[0] not in listed:
            message = f"Action {a.ref}: its workflow_file '{a.link[0]}' is not a workflow file of this pack"
            out.append(warning("workflow-file", message, ("workflow_file",), file=a.file, line=1, column=1))
    return out


class _Either(Collection[str]):
    """The pack's own refs, else the caller's (which may be looked up lazily, one by one)."""

    def __init__(self, own: set[str], known: Collection[str]) -> None:
        self.own, self.known = own, known

    def __contains__(self, ref: object) -> bool:
        return ref in self.own or ref in self.known

    def __iter__(self) -> Iterator[str]:
        return iter(self.own | set(self.known))

    def __len__(self) -> int:
        return len(self.own | set(self.known))


def no_workflows_note() -> Diagnostic:
    return warning(
        "no-workflows",
        "The pack has no workflow file: none in workflows/ nor in actions/workflows/ (*.yaml, *.yml)",
        file="workflows",
        line=1,
        column=1,
    )


def check_pack(
    files: PackFiles,
    *,
    known_actions: Collection[str] = (),
    known_workflows: Collection[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> PackReport:
    """Validates every workflow file of a pack: the one driver of the offline ``attune validate``
    and of validate jobs. Known actions are this pack's ``actions/`` plus ``known_actions``
    (what the caller knows is registered); ``progress`` is told (done, total) every 250 files."""
    report = PackReport(pack_ref=files.pack_ref, notes=list(files.notes))
    report.actions = check_actions(files.actions, files.pack_ref)
    report.notes += missing_links(report.actions, [f.path for f in files.workflows])
    if not files.workflows:
        report.notes.append(no_workflows_note())
    own_workflows = {w.ref for w in files.workflows}
    known = Known(
        _Either({a.ref for a in report.actions if a.meta is not None} | own_workflows, known_actions),
        _Either(own_workflows, known_workflows),
        links_of(report.actions),
    )
    total = len(files.workflows)
    for i, f in enumerate(files.workflows):
        if progress is not None and i % 250 == 249:
            progress(i, total)
        if f.data is None:
            report.workflows.append(WorkflowResult(f.ref, f.name, f.path, f.content_hash, None, _unreadable(f)))
            continue
        report.workflows.append(
            check_workflow(
                f.data,
                file=f.path,
                pack_ref=files.pack_ref,
                name=f.name,
                known=known,
                content_hash=f.content_hash,
            )
        )
    return report


__all__ = [
    "ActionResult",
    "Known",
    "PackReport",
    "WorkflowResult",
    "check_action",
    "check_pack",
    "check_workflow",
    "error",
    "links_of",
    "missing_links",
    "no_workflows_note",
    "taken_error",
    "warning",
]
