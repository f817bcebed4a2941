"""What the database accepts, checked before anything is written.

One file must never fail a pack's write: every value a sync stores is checked
here first and refused with a diagnostic on its file. The widths are those of
the columns (see the models; a unit test holds both together). Postgres also
refuses NUL in text and JSON (``\\u0000``), which YAML can produce with an
escape (``"\\0"``, ``"\\x00"``, ``"\\u0000"``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from attune.workflows.diagnostics import Path, render_path

REF_MAX = 255  # workflow_definitions.ref, actions.ref, sync_staging.ref, pack_files.ref
NAME_MAX = 255  # workflow_definitions.name, sync_staging.name
LABEL_MAX = 255  # workflow_definitions.label, actions.label
VERSION_MAX = 50  # workflow_definitions.version
SOURCE_FILE_MAX = 1024  # source_file of workflow_definitions, actions, sync_staging, pack_files
RUNNER_TYPE_MAX = 100  # actions.runner_type
ENTRY_POINT_MAX = 1024  # actions.entry_point

INT_MAX = 2**63 - 1  # what JSON consumers (Postgres jsonb aside) take as an integer
MAX_DEPTH = 64  # nesting of a free-form value

# Only a double-quoted YAML escape makes a NUL (the loader refuses NUL bytes):
# a file without one of these has none, and is not walked.
_NUL_ESCAPE = re.compile(r"\\(?:0|x00|u0000|U00000000)")


def may_hold_nul(text: str) -> bool:
    return "\\" in text and _NUL_ESCAPE.search(text) is not None


def nul_paths(value: Any, path: Path = ()) -> list[Path]:
    """Paths of the strings and keys holding NUL, in document order."""
    found: list[Path] = []
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        if type(v) is str:
            if "\x00" in v:
                found.append(p)
        elif type(v) is dict:
            items = list(v.items())
            for k, item in reversed(items):
                if type(k) is str and "\x00" in k:
                    found.append((*p, k))
                else:
                    stack.append((item, (*p, k)))
        elif type(v) is list:
            stack.extend((item, (*p, i)) for i, item in reversed(list(enumerate(v))))
    return found


def json_problems(value: Any, path: Path = ()) -> list[tuple[Path, str]]:
    """(path, message) for each part of ``value`` that is not plain JSON a database stores:
    keys that are not strings, other types than JSON's, numbers JSON cannot hold,
    nesting deeper than ``MAX_DEPTH``. (NUL: see ``nul_paths``.)"""
    out: list[tuple[Path, str]] = []
    base = len(path)
    stack: list[tuple[Any, Path]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -INT_MAX <= v <= INT_MAX:
                out.append((p, f"Value at {render_path(p)} is an integer too large for JSON (quote it)"))
        elif t is float:
            if not math.isfinite(v):
                out.append((p, f"Value at {render_path(p)} is {v}, which JSON cannot hold (quote it)"))
        elif t is dict or t is list:
            if len(p) - base > MAX_DEPTH:
                out.append((p, f"Value at {render_path(path)} is nested deeper than {MAX_DEPTH} levels"))
                continue
            if t is dict:
                for k, item in v.items():
                    if type(k) is not str:
                        where = render_path(p) or "top level"
                        out.append(((*p, _key_part(k)), f"Key {k!r} at {where} must be a string (quote it)"))
                    else:
                        stack.append((item, (*p, k)))
            else:
                stack.extend((item, (*p, i)) for i, item in enumerate(v))
        else:
            out.append((p, f"Value at {render_path(p) or 'top level'} is a YAML {t.__name__}, which JSON cannot hold"))
    return out


def _key_part(key: Any) -> str:
    """A path step for a key that is not a string (``1`` for the key 1: where the locator finds it)."""
    if key is None:
        return "null"
    if type(key) is bool:
        return "true" if key else "false"
    return str(key)
