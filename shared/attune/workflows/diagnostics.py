"""Diagnostics: what the parser and validator say about a file.

A diagnostic quotes what it found (names, keys, values, file names), and it is
stored (job results, the workflow's warnings, the file cache) and printed one
per line: its text is made safe when it is made. Control characters (NUL, which
Postgres refuses, newlines) and lone surrogates (a file name that is not UTF-8)
are shown escaped, and every text is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"

# A file says at most this much; then one diagnostic tells how much more there was.
MAX_DIAGNOSTICS = 200
MAX_MESSAGE = 1000  # characters of a message, a path or a file name
MAX_QUOTE = 100  # characters of a name or value quoted in a message
TOO_MANY = "too-many-diagnostics"

Path = tuple[str | int, ...]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    return _ESCAPES.get(c) or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")


def safe_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as it can be stored and printed on one line: control characters and lone
    surrogates escaped, at most ``limit`` characters (then an ellipsis)."""
    if not text.isprintable() and _UNSAFE.search(text):
        text = _UNSAFE.sub(_escape, text)
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def quote(value: object, limit: int = MAX_QUOTE) -> str:
    """A name or value as a message quotes it: safe and short."""
    return safe_text(value if isinstance(value, str) else repr(value), limit)


def render_path(path: Path) -> str:
    """``("tasks", 2, "next", 0)`` -> ``tasks[2].next[0]``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(f".{part}" if out else str(part))
    return "".join(out)


@dataclass(slots=True)
class Diagnostic:
    severity: str
    code: str
    message: str
    path: Path = ()
    line: int | None = None
    column: int | None = None
    file: str | None = None
    # Point at the key of the last path step rather than its value (unknown fields...).
    at_key: bool = False

    def __post_init__(self) -> None:
        self.message = safe_text(self.message)
        if self.file is not None:
            self.file = safe_text(self.file)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": safe_text(render_path(self.path)),
        }

    def format_text(self) -> str:
        return f"{self.file}:{self.line or 1}:{self.column or 1}: {self.severity} {self.code} {self.message}"


def limit_diagnostics(diags: list[Diagnostic], most: int = MAX_DIAGNOSTICS) -> list[Diagnostic]:
    """At most ``most`` diagnostics (errors first, then in their order), plus one that says
    how many were left out: an error when errors were, else a warning."""
    if len(diags) <= most:
        return diags
    errors = [d for d in diags if d.is_error]
    if len(errors) >= most:
        kept = errors[:most]
    else:
        keep = set(map(id, errors))
        warnings = [d for d in diags if id(d) not in keep][: most - len(errors)]
        keep.update(map(id, warnings))
        kept = [d for d in diags if id(d) in keep]
    left = len(diags) - len(kept)
    left_errors = len(errors) - sum(1 for d in kept if d.is_error)
    detail = f" ({left_errors} of them errors)" if left_errors else ""
    summary = Diagnostic(
        ERROR if left_errors else WARNING,
        TOO_MANY,
        f"{left} more diagnostics{detail} not shown: a file reports at most {most}",
        line=1,
        column=1,
    )
    return [*kept, summary]


def error(code: str, message: str, path: Path = (), **kw: Any) -> Diagnostic:
    return Diagnostic(ERROR, code, message, path, **kw)


def warning(code: str, message: str, path: Path = (), **kw: Any) -> Diagnostic:
    return Diagnostic(WARNING, code, message, path, **kw)
