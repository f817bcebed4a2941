"""What import-linter cannot see: a service named in a string (importlib, uvicorn's "module:app",
Celery's include) inside the domain package, or inside another service. Exit 1 when found."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("attune_api", "attune_worker", "attune_cli")
PACKAGES = {
    "attune": ROOT / "shared" / "attune",
    "attune_api": ROOT / "services" / "api" / "attune_api",
    "attune_worker": ROOT / "services" / "worker" / "attune_worker",
    "attune_cli": ROOT / "services" / "cli" / "attune_cli",
}


def offences(package: str, folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
                continue
            for service in SERVICES:
                if service == package:
                    continue
                # "attune_api.main:app", "attune_worker.tasks": a module path, not prose
                text = node.value
                if text == service or text.startswith((service + ".", service + ":")):
                    # the CLI runs services as programs (python -m attune_api): allowed, not an import
                    if package == "attune_cli" and text == service:
                        continue
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: '{text}' names {service}")
    return found


def main() -> int:
    problems = [o for package, folder in PACKAGES.items() for o in offences(package, folder)]
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} import(s) by string across the layers (see pyproject's [tool.importlinter])")
        return 1
    print("layers: no service imported by string")
    return 0


if __name__ == "__main__":
    sys.exit(main())
