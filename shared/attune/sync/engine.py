"""The sync engine: a pack's files -> checked -> staged -> merged into the registry.

Three entry points, each in the caller's transaction (services flush, the job
pipeline commits):

- ``sync_whole``: the whole pack in one step (most syncs);
- ``stage_chunk`` then ``finish_chunked``: a large pack split into slices of files
  checked in parallel, then registered in one step;
- ``validate``: the same checks as the offline ``attune validate``, nothing written.

Nothing registered is lost to a file-system error: a pack directory, ``workflows/``
or ``actions/`` that is a link, not a directory or unreadable refuses the sync
(nothing changes), and one that is removed or replaced while the sync runs fails
it (the transaction is rolled back).
"""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.config import Settings
from attune.db.pipeline import Pipeline
from attune.db.types import utcnow
from attune.errors import AttuneError
from attune.packs.models import Pack
from attune.sync import cache, fingerprint, history, store, write
from attune.sync.cache import KnownRefs, Prefetched, Resolver
from attune.sync.listing import Listing
from attune.sync.models import ERROR_STATUSES, STATUS_UNCHANGED, STATUS_UNCHANGED_ERROR
from attune.sync.schemas import (
    DIRECTORY_NOT_FOUND,
    ActionsSummary,
    SyncResult,
    ValidateResult,
    WorkflowSyncEntry,
    trusted_entry,
    validate_result,
)
from attune.workflows import repository as workflows_repo
from attune.workflows.checker import (
    ActionResult,
    WorkflowResult,
    check_actions,
    check_pack,
    check_workflow,
    links_of,
    missing_links,
    no_workflows_note,
    taken_error,
)
from attune.workflows.context import Known, Link
from attune.workflows.diagnostics import Diagnostic
from attune.workflows.loader import (
    LINKED_FOLDER,
    Selection,
    SourceFile,
    list_workflow_files,
    load_actions,
    load_pack_dir,
    load_workflows,
    resolve_pack_dir,
)
from attune.workflows.registrar import register_actions

ProgressFn = Callable[[int, int], None]
FOLDERS = ("workflows", "actions", "actions/workflows")


class PackChanged(AttuneError):
    """The pack directory (or one of its folders) was removed or replaced during the sync."""

    status_code = 409


@dataclass(frozen=True, slots=True)
class Target:
    """What a job syncs: the pack, its directory, and how."""

    job_id: uuid.UUID
    pack_id: int
    pack_ref: str
    root: Path
    max_file_size: int
    force: bool = False  # read and check every file, even unchanged ones
    folders: str = ""  # the folders' identity when the job started (chunked syncs)
    author: str = "auto"  # who the revisions it writes name: the job's user, "auto" for an auto-sync
    # a pushed version's sha256: content that is the same on every worker (its folders'
    # identity differs from one worker's copy to another's, and is not compared)
    sha256: str = ""
    # whether a stored state may answer: False when a bulk sync's group found none for the
    # pack when it began (a cold pack: no replay to ask for; should another sync have stored
    # one since, the full path answers the same)
    replay: bool = True

    @classmethod
    def of(cls, settings: Settings, *, job_id: uuid.UUID, pack: Pack, options: dict[str, Any], author: str) -> Target:
        assert pack.id is not None
        root = resolve_pack_dir(settings.packs_base_dir, pack.ref)
        return cls(
            job_id,
            pack.id,
            pack.ref,
            root,
            settings.max_file_size,
            bool(options.get("full")),
            options.get("folders", ""),
            author,
        )

    def stamp(self, now: datetime) -> history.Stamp:
        return history.Stamp(self.job_id, self.pack_ref, self.author, now)


# -- the pack directory's folders ------------------------------------------------------


def inspect_folders(root: Path) -> tuple[str | None, str]:
    """(why the pack cannot be synced or None, the identity of its directory and folders).

    The identity (inode numbers) is compared again before anything is written: a folder
    removed or replaced meanwhile fails the sync instead of emptying the registry."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return DIRECTORY_NOT_FOUND, ""
    try:
        parts = [str(os.fstat(root_fd).st_ino)]
        for name in FOLDERS:
            try:
                st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except FileNotFoundError:
                parts.append("-")  # a pack without this folder: nothing of that kind
                continue
            except OSError as exc:
                return f"Failed to load workflows: '{name}/' cannot be read ({exc.strerror}); nothing changed", ""
            if stat.S_ISLNK(st.st_mode):
                return (
                    f"Failed to load workflows: '{name}/' is a symbolic link (links are not followed); nothing changed",
                    "",
                )
            if not stat.S_ISDIR(st.st_mode):
                return f"Failed to load workflows: '{name}' is not a directory; nothing changed", ""
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
                with os.scandir(fd):
                    pass
                os.close(fd)
            except OSError as exc:
                return f"Failed to load workflows: '{name}/' cannot be read ({exc.strerror}); nothing changed", ""
            parts.append(str(st.st_ino))
        return None, ":".join(parts)
    finally:
        os.close(root_fd)


def _check_unchanged_folders(target: Target, expected: str) -> None:
    """PackChanged unless the folders are still usable and (when ``expected`` is known) the same."""
    reason, now = inspect_folders(target.root)
    if reason is not None or (expected and now != expected):
        raise PackChanged(
            f"The directory of pack '{target.pack_ref}' (or its workflows/ or actions/) was removed or replaced "
            "during the sync: nothing was changed; sync again"
        )


# -- what validation depends on besides a file's own text ----------------------------------


@dataclass(slots=True)
class Context:
    actions: list[ActionResult]
    resolver: Resolver
    notes: list[Diagnostic] = field(default_factory=list)
    progress: ProgressFn | None = None  # told (files done, files listed) every 250 files
    links: dict[str, Link] = field(default_factory=dict)  # action-linked workflow files -> their action
    local: Callable[[str], bool] = lambda ref: False  # whether the pack's own files answer a call to ref
    taken: Collection[str] = ()  # readable actions whose ref another pack holds (not registered)


@dataclass(frozen=True, slots=True)
class Slice:
    """The files one step reads: all of them (``names`` None), or one chunk's."""

    index: int = 0
    first_position: int = 0  # the position of its first file in the pack's sorted listing
    names: list[str] | None = None


WHOLE = Slice()


def _context(session: Session, target: Target, listing: Listing) -> Context:
    """The pack's actions and what its tasks may call. Its notes are the actions listing's;
    ``listing_notes`` adds what the workflow files' listing says."""
    files = load_actions(target.root, target.pack_ref, max_file_size=target.max_file_size)
    actions = check_actions(files.actions, target.pack_ref)
    own_actions = {a.ref for a in actions if a.meta is not None}
    pack_id = target.pack_id

    def elsewhere(ref: str) -> bool:  # every workflow is an action too
        return actions_repo.exists_outside(session, pack_id, ref) or workflows_repo.exists_outside(
            session, pack_id, ref
        )

    def local(ref: str) -> bool:
        return ref in own_actions or listing.has_ref(ref)

    resolver = Resolver(
        KnownRefs(local, elsewhere),
        KnownRefs(listing.has_ref, lambda r: workflows_repo.exists_outside(session, pack_id, r)),
    )
    return Context(actions, resolver, list(files.notes), links=links_of(actions), local=local)


def listing_notes(ctx: Context, paths: list[str]) -> list[Diagnostic]:
    """Actions whose workflow_file is not among the pack's workflow files; a pack without any."""
    notes = missing_links(ctx.actions, paths)
    if not paths:
        notes.append(no_workflows_note())
    return notes


def _check_file(f: SourceFile, pack_ref: str, resolver: Resolver, links: dict[str, Link]) -> WorkflowResult:
    if f.data is None:
        return WorkflowResult(f.ref, f.name, f.path, f.content_hash, None, [f.problem] if f.problem else [])
    known = Known(resolver.known_actions, resolver.known_workflows, links)
    return check_workflow(f.data, file=f.path, pack_ref=pack_ref, name=f.name, known=known, content_hash=f.content_hash)


@dataclass(slots=True)
class _Checked:
    listed: list[str]  # every file the listing returned, in position order
    rows: list[tuple]  # staging rows of the files read and checked
    unchanged: list[tuple[int, str]]  # (position, file) of the files not read
    cached: dict[str, store.CachedFile] = field(default_factory=dict)  # the cache as read before


def _read_and_check(
    session: Session,
    target: Target,
    ctx: Context,
    part: Slice,
    prefetched: Prefetched | None,
    read: dict[str, store.CachedFile] | None = None,
) -> tuple[_Checked, list[Diagnostic], set[str]]:
    """Lists (the slice's files only, when it names them), reads and checks the pack's workflow files,
    skipping those unchanged since the cached check (``read``: the cache when the caller read
    it). Returns what it found, the listing's notes and the cached files' paths."""
    if target.force:
        cached: dict[str, store.CachedFile] = {}
    elif prefetched is not None:
        cached = prefetched.cache
    elif read is not None:
        cached = read
    else:
        cached = cache.read_cache(session, target.pack_id, part.names)
    resolver = ctx.resolver

    def skip(rel: str, key: str) -> bool:
        if rel.startswith(LINKED_FOLDER + "/"):
            return False  # its action file may have changed what it says: always read again
        c = cached.get(rel)
        return c is not None and c.stat == key and resolver.still_resolves(c.deps, c.unresolved)

    selection = Selection(
        only=None if part.names is None else set(part.names),
        skip=None if target.force else skip,
        stat_keys=prefetched.stat_keys if prefetched is not None else None,
    )
    files = load_workflows(target.root, target.pack_ref, max_file_size=target.max_file_size, selection=selection)
    out = _Checked([f.path for f in files.workflows], [], [], cached)
    total = len(files.workflows)
    for i, f in enumerate(files.workflows):
        position = part.first_position + i
        if f.unchanged:
            out.unchanged.append((position, f.path))
            continue
        r = _check_file(f, target.pack_ref, resolver, ctx.links)
        out.rows.append(store.checked_row(target.job_id, part.index, position, f, r, resolver.unresolved(r.deps)))
        if ctx.progress is not None and i % 250 == 249:
            ctx.progress(i + 1, total)
    return out, files.notes, set(cached)


# -- entry points --------------------------------------------------------------------------


def sync_whole(
    session: Session,
    target: Target,
    *,
    prefetched: Prefetched | None = None,
    progress: ProgressFn | None = None,
    tail: Pipeline | None = None,
) -> SyncResult:
    """Syncs the whole pack in the caller's transaction, under the pack's lock. Only the
    files read are staged; the unchanged ones' outcome is read from pack_files. ``tail``:
    where the pack's stored state is queued, for the caller to send with its own last
    writes (the job's row, its lease) in one round trip."""
    read = None
    if target.replay or target.force or prefetched is not None:
        store.lock_pack(session, target.pack_id)
    else:  # no replay to try: the lock and the cache in one round trip
        read = store.lock_and_read_cache(session, target.pack_id)
    reason, folders = inspect_folders(target.root)
    if reason is not None:
        return SyncResult.refused(target.pack_ref, reason, str(target.root))
    fprint = None
    if prefetched is None and not target.sha256:  # a small pack from disk (a large one has a prefetch)
        fprint = fingerprint.compute(target.root, folders, max_file_size=target.max_file_size)
        if fprint is not None and not target.force and target.replay:
            replayed = fingerprint.replay(session, target.pack_id, fprint)
            if replayed is not None:
                return replayed  # nothing changed: what the full path would answer, nothing written
    ctx = _context(session, target, Listing(target, prefetched.names if prefetched is not None else None))
    ctx.progress = progress
    checked, notes, cached = _read_and_check(session, target, ctx, WHOLE, prefetched, read)
    ctx.notes = [*ctx.notes, *listing_notes(ctx, checked.listed), *notes]
    _check_unchanged_folders(target, folders)
    store.fresh_plans(session, len(checked.listed))
    store.stage_rows(session, checked.rows)
    listed = set(checked.listed)
    # the cache read under the lock held every row of the pack's: none, nothing to forget (a first sync)
    nothing_cached = not target.force and prefetched is None and not cached
    forget = not nothing_cached and (target.force or bool(checked.rows) or any(p not in listed for p in cached))
    unchanged_at = dict(checked.unchanged)
    writes = write.Writes(target.job_id, target.pack_id, checked.listed, forget, bool(checked.rows), bool(unchanged_at))
    stamp = target.stamp(utcnow())
    w = write.write(session, writes, stamp, ctx.actions)
    history.tombstones(session, stamp, w.removed)
    staged = iter(w.staged_report)
    report = [
        w.cached_report[unchanged_at[p]] if p in unchanged_at else next(staged) for p in range(len(checked.listed))
    ]
    ctx.taken = w.taken
    result = _result(target.pack_ref, report, w.created, w.removed, ctx, w.same)
    if fprint is not None and not w.taken and fingerprint.settles([row[1] for row in report], checked.listed):
        deps = [row[17] for row in checked.rows] + [checked.cached[path].deps for _, path in checked.unchanged]
        externals = fingerprint.externals(deps, ctx.local, ctx.resolver.known_actions)
        fingerprint.save(session, target.pack_id, fprint, externals, result, into=tail)
    else:
        fingerprint.forget(session, target.pack_id, into=tail)
    return result


def decide_fan_out(session: Session, target: Target, *, chunk_size: int) -> list[Slice] | Prefetched | None:
    """Whether a sync is worth splitting: the slices of files when more than ``chunk_size``
    files must be read; else what was learnt deciding (for ``sync_whole``)."""
    if _few_entries(target.root, chunk_size):
        return None  # the listing could only be shorter: nothing to split (a tree's small packs)
    names = list_workflow_files(target.root)
    if names is None or len(names) <= chunk_size:
        return None
    prefetched = None
    if not target.force:
        # a re-sync that finds few changed files is cheaper in one task than in many
        prefetched = cache.changed_files(session, pack_id=target.pack_id, pack_dir=target.root, names=names)
        if prefetched.changed <= chunk_size:
            return prefetched
    starts = range(0, len(names), chunk_size)
    return [Slice(index, start, names[start : start + chunk_size]) for index, start in enumerate(starts)]


def _few_entries(root: Path, most: int) -> bool:
    """Whether the workflow folders hold at most ``most`` entries in all (of which the
    workflow files are a part): a count without the listing's checks (a tenth of a
    millisecond of a small pack's sync). False when a folder cannot be counted."""
    count = 0
    for folder in ("workflows", LINKED_FOLDER):
        try:
            count += len(os.listdir(root / folder))
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return count <= most


def stage_chunk(session: Session, target: Target, *, part: Slice) -> int:
    """Checks one slice of a large pack's files and stages the outcome (a redelivered chunk
    replaces what it staged before). Returns the number of files staged."""
    ctx = _context(session, target, Listing(target))
    checked, _, _ = _read_and_check(session, target, ctx, part, None)
    chunk = part.index
    _check_unchanged_folders(target, target.folders)
    store.fresh_plans(session)  # a chunk of a large pack
    store.clear_chunk(session, target.job_id, chunk)
    store.stage_rows(session, checked.rows)
    store.stage_unchanged(
        session, job_id=target.job_id, chunk=chunk, pack_id=target.pack_id, unchanged=checked.unchanged
    )
    staged = len(checked.rows) + len(checked.unchanged)
    store.mark_chunk_done(session, target.job_id, chunk, staged)
    return staged


def finish_chunked(session: Session, target: Target) -> SyncResult:
    """Registers every staged chunk in the caller's transaction, under the pack's lock."""
    store.lock_pack(session, target.pack_id)
    store.fresh_plans(session)  # a large pack
    _check_unchanged_folders(target, target.folders)
    listing = Listing(target)
    ctx = _context(session, target, listing)
    skipped = load_workflows(target.root, target.pack_ref, selection=Selection(only=())).notes  # links, ...
    ctx.notes = [*ctx.notes, *listing_notes(ctx, listing.paths()), *skipped]
    now = utcnow()
    same = store.identical_refs(session, job_id=target.job_id, pack_id=target.pack_id)
    history.record(session, target.stamp(now))
    removed, created = store.merge(session, job_id=target.job_id, pack_id=target.pack_id, now=now)
    history.tombstones(session, target.stamp(now), removed)
    report = store.report_rows(session, target.job_id)
    ctx.taken = register_actions(session, target.pack_id, ctx.actions, now)
    store.drop(session, target.job_id)
    fingerprint.forget(session, target.pack_id)  # a large pack keeps no state (sync/fingerprint.py)
    return _result(target.pack_ref, report, created, removed, ctx, same)


def validate(session: Session, target: Target, *, progress: ProgressFn | None = None) -> ValidateResult:
    """Checks the pack's files as the offline ``attune validate`` does (the same checker),
    calls to other packs resolved against the registry; writes nothing."""
    reason, _ = inspect_folders(target.root)
    if reason is not None:
        return ValidateResult.refused(target.pack_ref, reason, str(target.root))
    files = load_pack_dir(target.root, target.pack_ref, max_file_size=target.max_file_size)
    pack_id = target.pack_id
    report = check_pack(
        files,
        known_actions=KnownRefs(lambda r: False, lambda r: actions_repo.exists_outside(session, pack_id, r)),
        known_workflows=KnownRefs(lambda r: False, lambda r: workflows_repo.exists_outside(session, pack_id, r)),
        progress=progress,
    )
    return validate_result(report)


# -- the result ---------------------------------------------------------------------------


def _loads(text: str | None) -> Any:
    return [] if text is None or text == "[]" else orjson.loads(text)


def _result(
    pack_ref: str, report: Sequence[Any], created: set[str], removed: list[str], ctx: Context, same: set[str]
) -> SyncResult:
    """The job's result from the report rows: (ref, status, diagnostics, workflow id, warnings).
    ``same``: the refs read again whose stored definition and warnings did not change."""
    entries: list[WorkflowSyncEntry] = []
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
        changed = status != STATUS_UNCHANGED and ref not in same
        entries.append(
            trusted_entry(ref=ref, created=ref in created, workflow_def_id=wf_id, diagnostics=warns, changed=changed)
        )
    refused = [  # each action file not registered, with its diagnostics
        (a, a.diagnostics if a.meta is None else [*a.diagnostics, taken_error(a)])
        for a in ctx.actions
        if a.meta is None or a.ref in ctx.taken
    ]
    action_errors = [
        f"Action {a.ref} ({a.file}): " + "; ".join(d.message for d in diags if d.is_error) for a, diags in refused
    ]
    return SyncResult(
        pack_ref=pack_ref,
        loaded_count=len(entries) + len(errors),
        registered_count=len(entries),
        workflows=entries,
        errors=errors,
        error_diagnostics=failed,
        removed=removed,
        unchanged_count=unchanged,
        actions=ActionsSummary(
            registered=sorted(a.ref for a in ctx.actions if a.meta is not None and a.ref not in ctx.taken),
            errors=action_errors,
            diagnostics={a.ref: [d.to_dict() for d in diags] for a, diags in refused},
        ),
        notes=[d.to_dict() for d in ctx.notes],
    )
