"""The shape the sync path keeps (issue "One job pipeline"): no function in it takes more
than 6 parameters or a boolean that switches its mode, and no module of the project is
over 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = [ROOT / "shared" / "attune", *sorted((ROOT / "services").glob("*/attune_*"))]
SYNC_PATH = [
    "shared/attune/jobs/pipeline.py",
    "shared/attune/jobs/leases.py",
    "shared/attune/sync/engine.py",
    "shared/attune/sync/cache.py",
    "shared/attune/sync/store.py",
    "shared/attune/sync/history.py",
    "shared/attune/sync/plan.py",
    "shared/attune/workflows/loader.py",
    "shared/attune/workflows/checker.py",
    "shared/attune/workflows/registrar.py",
    "services/api/attune_api/routers/sync.py",
    "services/worker/attune_worker/tasks.py",
]
MAX_PARAMS = 6
MAX_LINES = 500


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_module_is_over_500_lines():
    long = []
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, long


def test_sync_path_functions_take_few_parameters_and_no_mode_flags():
    problems = []
    for rel in SYNC_PATH:
        for fn in _functions(ROOT / rel):
            args = fn.args
            params = [a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg not in ("self", "cls")]
            if len(params) > MAX_PARAMS:
                problems.append(f"{rel}:{fn.lineno} {fn.name}: {len(params)} parameters")
            for a in params:
                if isinstance(a.annotation, ast.Name) and a.annotation.id == "bool":
                    problems.append(f"{rel}:{fn.lineno} {fn.name}: boolean parameter '{a.arg}'")
    assert not problems, problems


def test_the_pack_ref_rule_is_written_once():
    """attune/refs.py holds it; the loader, the API's parameters and the messages import it."""
    found = []
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            if path.name != "refs.py" and "[a-z][a-z0-9_-]" in path.read_text():
                found.append(str(path.relative_to(ROOT)))
    assert not found, found
