"""Sync and validate a pack: load files, check them, register (SPEC sections 2 and 5).

Services flush, never commit: the caller's unit of work (sync/runner.py)
commits once, so a pack's sync is one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.config import Settings
from attune.db.types import utcnow
from attune.packs.models import Pack
from attune.workflows import repository as workflows_repo
from attune.workflows.checker import WorkflowResult, check_action, check_workflow
from attune.workflows.loader import PackDirectoryNotFound, PackFiles, SourceFile, load_pack
from attune.workflows.registrar import register_actions, register_workflows

DIRECTORY_NOT_FOUND = "Failed to load workflows: Directory not found"
ProgressFn = Callable[[int, int], None]
_LOCK_NAMESPACE = 0x4154  # "AT": keeps our advisory locks apart from anyone else's


def lock_pack(session: Session, pack_id: int) -> None:
    """Serialises syncs of one pack (held until the transaction ends); other packs run in parallel."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": pack_id}
        )


def context_fingerprint(actions: Iterable[str], workflows: Iterable[str]) -> str:
    h = hashlib.sha256()
    h.update("\n".join(sorted(actions)).encode())
    h.update(b"\n--\n")
    h.update("\n".join(sorted(workflows)).encode())
    return h.hexdigest()


def failure_message(r: WorkflowResult) -> str:
    return f"Validation failed for {r.ref}: " + "; ".join(d.message for d in r.errors)


def _load(settings: Settings, pack_ref: str) -> PackFiles | None:
    try:
        return load_pack(settings.packs_base_dir, pack_ref, max_file_size=settings.max_file_size)
    except PackDirectoryNotFound:
        return None


def _unreadable(f: SourceFile) -> WorkflowResult:
    return WorkflowResult(f.ref, f.name, f.path, f.content_hash, None, [f.problem] if f.problem else [])


def _check_files(
    files: PackFiles,
    todo: list[SourceFile],
    known_actions: set[str],
    known_workflows: set[str],
    progress: ProgressFn | None,
    done_before: int,
) -> list[WorkflowResult]:
    results = []
    total = len(files.workflows)
    for i, f in enumerate(todo, 1):
        if f.data is None:
            results.append(_unreadable(f))
        else:
            results.append(
                check_workflow(
                    f.data,
                    file=f.path,
                    pack_ref=files.pack_ref,
                    name=f.name,
                    known_actions=known_actions,
                    known_workflows=known_workflows,
                    content_hash=f.content_hash,
                )
            )
        if progress and i % 500 == 0:
            progress(done_before + i, total)
    return results


def sync_pack(
    session: Session, pack: Pack, settings: Settings, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Loads, validates and registers a pack's workflows and actions in the caller's transaction."""
    assert pack.id is not None
    lock_pack(session, pack.id)
    files = _load(settings, pack.ref)
    if files is None:
        return {
            "pack_ref": pack.ref,
            "loaded_count": 0,
            "registered_count": 0,
            "workflows": [],
            "errors": [DIRECTORY_NOT_FOUND],
            "removed": [],
        }

    actions = [check_action(f, pack.ref) for f in files.actions]
    known_actions = {a.ref for a in actions if a.meta is not None}
    known_actions |= actions_repo.refs_outside_pack(session, pack.id)
    known_workflows = {f.ref for f in files.workflows} | workflows_repo.refs_outside_pack(session, pack.id)
    context = context_fingerprint(known_actions, known_workflows)

    existing = workflows_repo.existing_for_pack(session, pack.id)
    unchanged: set[str] = set()
    todo: list[SourceFile] = []
    for f in files.workflows:
        ex = existing.get(f.ref)
        if (
            f.data is not None
            and ex is not None
            and ex.content_hash == f.content_hash
            and ex.context_hash == context
        ):
            unchanged.add(f.ref)
        else:
            todo.append(f)
    if progress:
        progress(len(unchanged), len(files.workflows))
    checked = {
        r.ref: r for r in _check_files(files, todo, known_actions, known_workflows, progress, len(unchanged))
    }

    now = utcnow()
    ids = register_workflows(session, pack.id, list(checked.values()), context, now)
    register_actions(session, pack.id, actions, now)

    file_refs = {f.ref for f in files.workflows}
    removed = sorted(ref for ref in existing if ref not in file_refs)
    workflows_repo.delete_refs(session, pack.id, removed)
    session.flush()

    entries: list[dict[str, Any]] = []
    errors: list[str] = []
    failed: dict[str, list[dict[str, Any]]] = {}
    for f in files.workflows:
        if f.ref in unchanged:
            ex = existing[f.ref]
            entries.append(
                {
                    "ref_name": f.ref,
                    "created": False,
                    "workflow_def_id": ex.id,
                    "warnings": [w["message"] for w in ex.warnings],
                    "diagnostics": ex.warnings,
                    "changed": False,
                }
            )
            continue
        r = checked[f.ref]
        if r.ok:
            entries.append(
                {
                    "ref_name": r.ref,
                    "created": r.ref not in existing,
                    "workflow_def_id": ids[r.ref],
                    "warnings": [d.message for d in r.warnings],
                    "diagnostics": [d.to_dict() for d in r.warnings],
                    "changed": True,
                }
            )
        else:
            errors.append(failure_message(r))
            failed[r.ref] = [d.to_dict() for d in r.diagnostics]
    if progress:
        progress(len(files.workflows), len(files.workflows))
    return {
        "pack_ref": pack.ref,
        "loaded_count": len(files.workflows),
        "registered_count": len(entries),
        "workflows": entries,
        "errors": errors,
        "error_diagnostics": failed,
        "removed": removed,
        "unchanged_count": len(unchanged),
        "actions": {
            "registered": sorted(a.ref for a in actions if a.meta is not None),
            "errors": [
                f"Action {a.ref} ({a.file}): " + "; ".join(d.message for d in a.diagnostics if d.is_error)
                for a in actions
                if a.meta is None
            ],
        },
        "notes": [d.to_dict() for d in files.notes],
    }


def validate_pack(
    session: Session, pack: Pack, settings: Settings, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Loads and validates a pack's workflows; registers nothing."""
    assert pack.id is not None
    files = _load(settings, pack.ref)
    if files is None:
        # Counted as an error so that a pipeline gating on error_count stops here.
        return {
            "pack_ref": pack.ref,
            "validated_count": 0,
            "error_count": 1,
            "errors": {pack.ref: [DIRECTORY_NOT_FOUND]},
            "diagnostics": {},
        }
    actions = [check_action(f, pack.ref) for f in files.actions]
    known_actions = {a.ref for a in actions if a.meta is not None}
    known_actions |= actions_repo.refs_outside_pack(session, pack.id)
    known_workflows = {f.ref for f in files.workflows} | workflows_repo.refs_outside_pack(session, pack.id)
    if progress:
        progress(0, len(files.workflows))
    results = _check_files(files, list(files.workflows), known_actions, known_workflows, progress, 0)
    errors = {r.ref: [d.message for d in r.errors] for r in results if not r.ok}
    diagnostics = {r.ref: [d.to_dict() for d in r.diagnostics] for r in results if r.diagnostics}
    return {
        "pack_ref": pack.ref,
        "validated_count": len(results),
        "error_count": len(errors),
        "errors": errors,
        "diagnostics": diagnostics,
        "warning_count": sum(len(r.warnings) for r in results),
        "notes": [d.to_dict() for d in files.notes] + [d.to_dict() for a in actions for d in a.diagnostics],
    }
