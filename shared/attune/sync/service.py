"""Sync and validate a pack: load files, check them, register (SPEC sections 2 and 5).

Services flush, never commit: the caller's unit of work (sync/runner.py)
commits, so the registration of a pack is one transaction.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.config import Settings
from attune.db.types import utcnow
from attune.packs.models import Pack
from attune.sync import staging
from attune.sync.models import ERROR_STATUSES, STATUS_UNCHANGED, STATUS_UNCHANGED_ERROR
from attune.workflows import repository as workflows_repo
from attune.workflows.checker import ActionResult, WorkflowResult, check_action, check_workflow
from attune.workflows.loader import (
    WORKFLOW_EXTENSIONS,
    PackFiles,
    SourceFile,
    list_workflow_files,
    load_pack_dir,
    resolve_pack_dir,
    stat_key,
)
from attune.workflows.registrar import register_actions

DIRECTORY_NOT_FOUND = "Failed to load workflows: Directory not found"
ProgressFn = Callable[[int, int], None]
_LOCK_NAMESPACE = 0x4154  # "AT": keeps our advisory locks apart from anyone else's


def lock_pack(session: Session, pack_id: int) -> None:
    """Serialises syncs of one pack (held until the transaction ends); other packs run in parallel."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": pack_id})


class KnownRefs(Collection[str]):
    """Refs a task may call: the pack's own, else looked up once each in the database.

    Loading every ref of every other pack for each sync would cost more than the
    sync of a small pack; a pack calls few refs outside itself."""

    def __init__(self, local: Callable[[str], bool], remote: Callable[[str], bool]) -> None:
        self._local = local
        self._remote = remote
        self._cache: dict[str, bool] = {}

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, str):
            return False
        hit = self._cache.get(ref)
        if hit is None:
            hit = self._cache[ref] = self._local(ref) or self._remote(ref)
        return hit

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(k for k, v in self._cache.items() if v)

    def __len__(self) -> int:
        return sum(self._cache.values())


# A whole-pack sync stages only the files it read; the unchanged ones are taken from
# pack_files where they are (see stage_chunk). Tests turn it off to compare both ways.
FAST_UNCHANGED = True


@dataclass(slots=True)
class SyncContext:
    """What validation depends on besides a file's own text."""

    actions: list[ActionResult]
    known_actions: KnownRefs
    known_workflows: KnownRefs
    notes: list[Any] = field(default_factory=list)
    _resolving: set[str] = field(default_factory=set)  # calls seen to resolve
    # A whole-pack sync: every listed file in position order, and the positions of the
    # unchanged ones, which are not staged (their outcome is read from pack_files).
    listed: list[str] | None = None
    unchanged_at: dict[int, str] | None = None
    forget: bool = True

    def still_resolves(self, deps_text: str, unresolved_text: str) -> bool:
        """Whether a cached file's calls (JSON text, see the validator's deps) resolve as they did."""
        deps = orjson.loads(deps_text)  # 3x json's speed: 10,000 of these per unchanged re-sync
        if unresolved_text == "[]" and self._resolving.issuperset(deps):
            return True  # the common case, at C speed
        now = self.unresolved(deps)
        self._resolving.update(d for d in deps if d not in now)
        return now == orjson.loads(unresolved_text)

    def unresolved(self, deps: list[str]) -> list[str]:
        """The calls (see the validator's deps) that do not resolve now."""
        out = []
        for dep in deps:
            kind, ref = dep[:2], dep[2:]
            if ref not in self.known_actions and (kind != "w:" or ref not in self.known_workflows):
                out.append(dep)
        return out


def pack_dir(settings: Settings, pack_ref: str) -> Path:
    return resolve_pack_dir(settings.packs_base_dir, pack_ref)


def list_files(settings: Settings, pack_ref: str) -> list[str] | None:
    """The pack's workflow file names, sorted; None when its directory is missing."""
    return list_workflow_files(pack_dir(settings, pack_ref))


def build_context(session: Session, settings: Settings, pack: Pack) -> SyncContext:
    assert pack.id is not None
    root = pack_dir(settings, pack.ref)
    files = load_pack_dir(root, pack.ref, max_file_size=settings.max_file_size, workflows=False)
    actions = [check_action(f, pack.ref) for f in files.actions]
    own_actions = {a.ref for a in actions if a.meta is not None}
    prefix = pack.ref + "."
    workflows_dir = root / "workflows"

    def own_workflow(ref: str) -> bool:
        if not ref.startswith(prefix):
            return False
        stem = ref[len(prefix) :]
        return any(os.path.isfile(workflows_dir / (stem + ext)) for ext in WORKFLOW_EXTENSIONS)

    pack_id = pack.id
    return SyncContext(
        actions=actions,
        known_actions=KnownRefs(own_actions.__contains__, lambda r: actions_repo.exists_outside(session, pack_id, r)),
        known_workflows=KnownRefs(own_workflow, lambda r: workflows_repo.exists_outside(session, pack_id, r)),
        notes=files.notes,  # the workflows/ listing adds its own (symlinks) when it is read
    )


def _unreadable(f: SourceFile) -> WorkflowResult:
    return WorkflowResult(f.ref, f.name, f.path, f.content_hash, None, [f.problem] if f.problem else [])


def check_file(f: SourceFile, pack_ref: str, ctx: SyncContext) -> WorkflowResult:
    if f.data is None:
        return _unreadable(f)
    return check_workflow(
        f.data, file=f.path, pack_ref=pack_ref, name=f.name, known_actions=ctx.known_actions,
        known_workflows=ctx.known_workflows, content_hash=f.content_hash,
    )  # fmt: skip


def stage_chunk(
    session: Session,
    settings: Settings,
    job_id: uuid.UUID,
    pack: Pack,
    ctx: SyncContext,
    chunk: int,
    names: list[str] | None,
    first_position: int,
    progress: ProgressFn | None = None,
    force: bool = False,
    cache: dict[str, staging.CachedFile] | None = None,
    stat_keys: dict[str, str] | None = None,
) -> int:
    """Checks one chunk of files (all of them when ``names`` is None: the whole sync in the
    caller's transaction) and stages the outcome.
    A file is not read when its stat key matches the cache and its calls resolve as
    before (unless ``force``)."""
    assert pack.id is not None
    if force:
        cache = {}
    elif cache is None:
        cache = (
            staging.cached_files_of_pack(session, pack.id)
            if names is None
            else staging.cached_files(session, pack.id, [f"workflows/{n}" for n in names])
        )

    def skip(rel: str, key: str) -> bool:
        c = cache.get(rel)
        return c is not None and c.stat == key and ctx.still_resolves(c.deps, c.unresolved)

    files = load_pack_dir(
        pack_dir(settings, pack.ref), pack.ref, max_file_size=settings.max_file_size, actions=False,
        only=None if names is None else set(names), skip=None if force else skip, stat_keys=stat_keys,
    )  # fmt: skip
    if names is None:
        ctx.notes = [*ctx.notes, *files.notes]
    rows = []
    unchanged: list[tuple[int, str]] = []  # staged by the database from pack_files
    total = len(files.workflows)
    for i, f in enumerate(files.workflows):
        position = first_position + i
        if f.unchanged:
            unchanged.append((position, f.path))
            continue
        r = check_file(f, pack.ref, ctx)
        rows.append(staging.checked_row(job_id, chunk, position, f, r, ctx.unresolved(r.deps)))
        if progress and i % 250 == 249:
            progress(i + 1, total)
    to_stage = unchanged
    if FAST_UNCHANGED and names is None:
        # Profiled: staging 10,000 unchanged rows from pack_files and merging them back was
        # half of an unchanged re-sync. Only what was read is staged; finish_sync takes the
        # unchanged files' outcome from pack_files.
        ctx.listed = [f.path for f in files.workflows]
        ctx.unchanged_at = dict(unchanged)
        listed = set(ctx.listed)
        # cached files to forget: gone from the listing, or read again (refused ones included)
        ctx.forget = bool(rows) or any(path not in listed for path in cache)
        to_stage = []
    staging.write_chunk(session, job_id, chunk, rows, pack.id, to_stage, fan_in=names is not None)
    return len(rows) + len(unchanged)


def finish_sync(
    session: Session, job_id: uuid.UUID, pack: Pack, ctx: SyncContext, *, fan_in: bool = True
) -> dict[str, Any]:
    """Registers what the chunks staged, in the caller's transaction, under the pack's lock
    (already held when the sync is done whole: ``fan_in`` false)."""
    assert pack.id is not None
    if fan_in:
        lock_pack(session, pack.id)
    now = utcnow()
    created: set[str]
    if ctx.listed is not None and ctx.unchanged_at is not None and not fan_in:
        removed, created = staging.merge_read(session, job_id, pack.id, now, ctx.listed, ctx.forget)
        report = staging.report_rows_read(session, job_id, pack.id, len(ctx.listed), ctx.unchanged_at)
    else:
        removed, created = staging.merge(session, job_id, pack.id, now)
        report = staging.report_rows(session, job_id)
    register_actions(session, pack.id, ctx.actions, now)
    entries: list[dict[str, Any]] = []
    errors: list[str] = []
    failed: dict[str, list[dict[str, Any]]] = {}
    unchanged = 0
    for ref, status, diagnostics_text, wf_id, warnings_text in report:
        unchanged += status in (STATUS_UNCHANGED, STATUS_UNCHANGED_ERROR)
        if status in ERROR_STATUSES:
            diags = _loads(diagnostics_text)
            messages = "; ".join(d["message"] for d in diags if d["severity"] == "error")
            errors.append(f"Validation failed for {ref}: {messages}")
            failed[ref] = diags
            continue
        warns = _loads(warnings_text if status == STATUS_UNCHANGED else diagnostics_text)
        entries.append(
            {
                "ref_name": ref,
                "created": ref in created,
                "workflow_def_id": wf_id,
                "warnings": [w["message"] for w in warns],
                "diagnostics": warns,
                "changed": status != STATUS_UNCHANGED,
            }
        )
    staging.drop(session, job_id, fan_in=fan_in)
    return {
        "pack_ref": pack.ref,
        "loaded_count": len(entries) + len(errors),
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
        "notes": [d.to_dict() for d in ctx.notes],
    }


def _loads(text: str | None) -> Any:
    return [] if text is None or text == "[]" else json.loads(text)


def missing_directory_result(pack_ref: str) -> dict[str, Any]:
    return {
        "pack_ref": pack_ref,
        "loaded_count": 0,
        "registered_count": 0,
        "workflows": [],
        "errors": [DIRECTORY_NOT_FOUND],
        "removed": [],
    }


def changed_files(
    session: Session, settings: Settings, pack: Pack, names: list[str]
) -> tuple[int, dict[str, staging.CachedFile], dict[str, str]]:
    """How many files a sync would have to read (their stat key is not the cached one),
    found with one stat per file; the cache and the stat keys of the unchanged regular
    files, for the sync to reuse (not stat them again)."""
    assert pack.id is not None
    cache = staging.cached_files_of_pack(session, pack.id)
    changed = 0
    keys: dict[str, str] = {}
    dir_fd = os.open(pack_dir(settings, pack.ref) / "workflows", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in names:
            c = cache.get("workflows/" + name)
            if c is None:
                changed += 1
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                changed += 1
                continue
            key = stat_key(st)
            if c.stat == key and stat.S_ISREG(st.st_mode):
                keys[name] = key
            else:
                changed += 1
    finally:
        os.close(dir_fd)
    return changed, cache, keys


def workflow_notes(settings: Settings, pack: Pack) -> list[Any]:
    """What listing the pack's workflows/ directory has to say (skipped symbolic links)."""
    return load_pack_dir(pack_dir(settings, pack.ref), pack.ref, actions=False, only=()).notes


def sync_pack(
    session: Session,
    settings: Settings,
    job_id: uuid.UUID,
    pack: Pack,
    progress: ProgressFn | None = None,
    force: bool = False,
    cache: dict[str, staging.CachedFile] | None = None,
    stat_keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The whole sync of a pack in the caller's transaction (one chunk)."""
    assert pack.id is not None
    lock_pack(session, pack.id)
    if not pack_dir(settings, pack.ref).is_dir() or pack_dir(settings, pack.ref).is_symlink():
        return missing_directory_result(pack.ref)
    ctx = build_context(session, settings, pack)
    stage_chunk(session, settings, job_id, pack, ctx, 0, None, 0, progress, force, cache, stat_keys)
    return finish_sync(session, job_id, pack, ctx, fan_in=False)


def _load(settings: Settings, pack_ref: str) -> PackFiles | None:
    from attune.workflows.loader import PackDirectoryNotFound

    try:
        return load_pack_dir(pack_dir(settings, pack_ref), pack_ref, max_file_size=settings.max_file_size)
    except PackDirectoryNotFound:
        return None


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
    ctx = build_context(session, settings, pack)
    results = []
    for i, f in enumerate(files.workflows):
        results.append(check_file(f, pack.ref, ctx))
        if progress and i % 250 == 249:
            progress(i + 1, len(files.workflows))
    errors = {r.ref: [d.message for d in r.errors] for r in results if not r.ok}
    diagnostics = {r.ref: [d.to_dict() for d in r.diagnostics] for r in results if r.diagnostics}
    return {
        "pack_ref": pack.ref,
        "validated_count": len(results),
        "error_count": len(errors),
        "errors": errors,
        "diagnostics": diagnostics,
        "warning_count": sum(len(r.warnings) for r in results),
        "notes": [d.to_dict() for d in files.notes] + [d.to_dict() for a in ctx.actions for d in a.diagnostics],
    }
