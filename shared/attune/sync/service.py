"""Sync and validate a pack: load files, check them, register (SPEC sections 2 and 5).

Services flush, never commit: the caller's unit of work (sync/runner.py)
commits once, so a pack's sync is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.config import Settings
from attune.db.types import utcnow
from attune.packs.models import Pack
from attune.sync import staging
from attune.sync.models import STATUS_ERROR, STATUS_UNCHANGED
from attune.workflows import repository as workflows_repo
from attune.workflows.checker import ActionResult, WorkflowResult, check_action, check_workflow
from attune.workflows.loader import (
    PackDirectoryNotFound,
    PackFiles,
    SourceFile,
    list_workflow_files,
    load_pack,
    load_pack_dir,
    resolve_pack_dir,
)
from attune.workflows.registrar import register_actions

DIRECTORY_NOT_FOUND = "Failed to load workflows: Directory not found"
ProgressFn = Callable[[int, int], None]
_LOCK_NAMESPACE = 0x4154  # "AT": keeps our advisory locks apart from anyone else's


def lock_pack(session: Session, pack_id: int) -> None:
    """Serialises syncs of one pack (held until the transaction ends); other packs run in parallel."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": pack_id})


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


@dataclass(slots=True)
class SyncContext:
    """What validation depends on besides the files themselves."""

    actions: list[ActionResult]
    known_actions: set[str]
    known_workflows: set[str]

    def resolves(self, deps: list[str]) -> bool:
        """Whether every call a registered workflow makes still resolves (see validator deps)."""
        for dep in deps:
            kind, ref = dep[:2], dep[2:]
            if ref not in self.known_actions and (kind != "w:" or ref not in self.known_workflows):
                return False
        return True


def list_files(settings: Settings, pack_ref: str) -> list[str] | None:
    """The pack's workflow file names, sorted; None when its directory is missing."""
    return list_workflow_files(resolve_pack_dir(settings.packs_base_dir, pack_ref))


def build_context(session: Session, settings: Settings, pack: Pack, names: list[str]) -> SyncContext:
    assert pack.id is not None
    files = load_pack_dir(
        resolve_pack_dir(settings.packs_base_dir, pack.ref), pack.ref, max_file_size=settings.max_file_size,
        only=(),
    )  # fmt: skip
    actions = [check_action(f, pack.ref) for f in files.actions]
    known_actions = {a.ref for a in actions if a.meta is not None}
    known_actions |= actions_repo.refs_outside_pack(session, pack.id)
    known_workflows = {f"{pack.ref}.{n.rsplit('.', 1)[0]}" for n in names}
    known_workflows |= workflows_repo.refs_outside_pack(session, pack.id)
    return SyncContext(actions, known_actions, known_workflows)


def stage_chunk(
    session: Session,
    settings: Settings,
    job_id: uuid.UUID,
    pack: Pack,
    ctx: SyncContext,
    chunk: int,
    names: list[str],
    first_position: int,
    progress: ProgressFn | None = None,
    total: int | None = None,
) -> int:
    """Checks one chunk of files (unchanged ones are not parsed) and stages the outcome."""
    assert pack.id is not None
    files = load_pack_dir(
        resolve_pack_dir(settings.packs_base_dir, pack.ref), pack.ref, max_file_size=settings.max_file_size,
        actions=False, only=set(names),
    )  # fmt: skip
    existing = workflows_repo.hashes_for(session, pack.id, [f.ref for f in files.workflows])
    rows = []
    for i, f in enumerate(files.workflows):
        position = first_position + i
        ex = existing.get(f.ref)
        if f.data is not None and ex is not None and ex[0] == f.content_hash and ctx.resolves(ex[1]):
            rows.append(staging.unchanged_row(job_id, chunk, position, f))
        elif f.data is None:
            rows.append(staging.checked_row(job_id, chunk, position, _unreadable(f)))
        else:
            r = check_workflow(
                f.data, file=f.path, pack_ref=pack.ref, name=f.name, known_actions=ctx.known_actions,
                known_workflows=ctx.known_workflows, content_hash=f.content_hash,
            )  # fmt: skip
            rows.append(staging.checked_row(job_id, chunk, position, r))
        if progress and i % 250 == 249:
            progress(first_position + i + 1, total or len(names))
    staging.write_chunk(session, job_id, chunk, rows)
    return len(rows)


def finish_sync(
    session: Session, settings: Settings, job_id: uuid.UUID, pack: Pack, ctx: SyncContext
) -> dict[str, Any]:
    """Registers what the chunks staged, in the caller's transaction, under the pack's lock."""
    assert pack.id is not None
    lock_pack(session, pack.id)
    before = workflows_repo.refs_of_pack(session, pack.id)
    now = utcnow()
    removed = staging.merge(session, job_id, pack.id, now)
    register_actions(session, pack.id, ctx.actions, now)
    entries: list[dict[str, Any]] = []
    errors: list[str] = []
    failed: dict[str, list[dict[str, Any]]] = {}
    unchanged = 0
    for ref, status, diagnostics, wf_id, wf_warnings in staging.report_rows(session, job_id):
        if status == STATUS_ERROR:
            diags = diagnostics or []
            errors.append(
                f"Validation failed for {ref}: " + "; ".join(d["message"] for d in diags if d["severity"] == "error")
            )
            failed[ref] = diags
            continue
        warns = (wf_warnings if status == STATUS_UNCHANGED else diagnostics) or []
        unchanged += status == STATUS_UNCHANGED
        entries.append(
            {
                "ref_name": ref,
                "created": ref not in before,
                "workflow_def_id": wf_id,
                "warnings": [w["message"] for w in warns],
                "diagnostics": warns,
                "changed": status != STATUS_UNCHANGED,
            }
        )
    loaded = len(entries) + len(errors)
    staging.drop(session, job_id)
    notes = load_pack_dir(resolve_pack_dir(settings.packs_base_dir, pack.ref), pack.ref, actions=False, only=()).notes
    return {
        "pack_ref": pack.ref,
        "loaded_count": loaded,
        "registered_count": len(entries),
        "workflows": entries,
        "errors": errors,
        "error_diagnostics": failed,
        "removed": removed,
        "unchanged_count": unchanged,
        "actions": {
            "registered": sorted(a.ref for a in ctx.actions if a.meta is not None),
            "errors": [
                f"Action {a.ref} ({a.file}): " + "; ".join(d.message for d in a.diagnostics if d.is_error)
                for a in ctx.actions
                if a.meta is None
            ],
        },
        "notes": [d.to_dict() for d in notes],
    }


def missing_directory_result(pack_ref: str) -> dict[str, Any]:
    return {
        "pack_ref": pack_ref,
        "loaded_count": 0,
        "registered_count": 0,
        "workflows": [],
        "errors": [DIRECTORY_NOT_FOUND],
        "removed": [],
    }


def sync_pack(
    session: Session, settings: Settings, job_id: uuid.UUID, pack: Pack, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """The whole sync of a pack in the caller's transaction (one chunk)."""
    assert pack.id is not None
    lock_pack(session, pack.id)
    names = list_files(settings, pack.ref)
    if names is None:
        return missing_directory_result(pack.ref)
    ctx = build_context(session, settings, pack, names)
    stage_chunk(session, settings, job_id, pack, ctx, 0, names, 0, progress, len(names))
    return finish_sync(session, settings, job_id, pack, ctx)


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
