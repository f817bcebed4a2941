"""Diagnostics: what the parser and validator say about a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"

Path = tuple[str | int, ...]


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
            "path": render_path(self.path),
        }

    def format_text(self) -> str:
        return f"{self.file}:{self.line or 1}:{self.column or 1}: {self.severity} {self.code} {self.message}"


def error(code: str, message: str, path: Path = (), **kw: Any) -> Diagnostic:
    return Diagnostic(ERROR, code, message, path, **kw)


def warning(code: str, message: str, path: Path = (), **kw: Any) -> Diagnostic:
    return Diagnostic(WARNING, code, message, path, **kw)
