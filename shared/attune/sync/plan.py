"""The plan of a sync (``?dry_run=true``): what the sync would create, update, leave,
remove, or refuse, for workflows and actions.

The plan runs the real sync (``engine.sync_whole``: the same listing, cache, checks,
merge and revisions) inside a savepoint, reads what it wrote, and rolls the savepoint
back: nothing persists (registry, file cache, revisions, staging), and the plan is
what the sync does by construction, not by a second implementation that could drift.
The pack's lock is held from before the first read to the end of the job's
transaction, so no sync of the pack interleaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.revisions.content import summarise, unified_diff
from attune.revisions.models import CHANGE_REMOVE, CHANGE_UPDATE
from attune.sync import engine, history, store
from attune.sync.engine import ProgressFn, Target
from attune.sync.schemas import PLAN_CHANGES, PlanEntry, PlanResult, SyncResult


def plan(session: Session, target: Target, *, progress: ProgressFn | None = None) -> PlanResult:
    """The plan of a whole-pack sync, in the caller's transaction; writes nothing."""
    planned, _, _ = plan_then_decide(
        session, target, lambda: engine.sync_whole(session, target, progress=progress), keep=lambda _: False
    )
    return planned


def plan_then_decide(
    session: Session, target: Target, sync: Callable[[], SyncResult], *, keep: Callable[[PlanResult], bool]
) -> tuple[PlanResult, SyncResult, bool]:
    """Runs ``sync`` (a whole-pack sync, or the registering step of a chunked one) in a
    savepoint, under the pack's lock, and computes its plan; ``keep(plan)`` says whether
    the sync stays (the savepoint is released: the plan is what was done) or is rolled
    back (nothing persists). Returns (plan, the sync's result, whether it was kept)."""
    store.lock_pack(session, target.pack_id)
    before = actions_repo.registered_of_pack(session, target.pack_id)
    savepoint = session.begin_nested()
    kept = False
    try:
        result = sync()
        written = history.written(session, target.job_id)
        after = actions_repo.registered_of_pack(session, target.pack_id)
        planned = _plan(target, result, written, _actions(result, before, after))
        kept = keep(planned)
    finally:
        if kept:
            savepoint.commit()
        else:
            savepoint.rollback()
    return planned, result, kept


def has_errors(planned: PlanResult) -> bool:
    """Whether a workflow or an action of the plan would not register."""
    return bool(planned.errors) or any(a.change == "error" for a in planned.actions)


def _plan(target: Target, result: SyncResult, written: dict[str, Any], actions: list[PlanEntry]) -> PlanResult:
    workflows = _workflows(result, written)
    counts = dict.fromkeys(PLAN_CHANGES, 0)
    for entry in workflows:
        counts[entry.change] += 1
    return PlanResult(
        pack_ref=target.pack_ref,
        loaded_count=result.loaded_count,
        counts=counts,
        workflows=workflows,
        actions=actions,
        errors=result.errors,
        notes=result.notes,
    )


def _workflows(result: SyncResult, written: dict[str, Any]) -> list[PlanEntry]:
    entries: list[PlanEntry] = []
    for w in result.workflows:
        row = written.get(w.ref_name)
        if row is None:
            entries.append(PlanEntry(ref=w.ref_name, change="unchanged"))
            continue
        number, change, new, old, created = row
        summary = created if created is not None else summarise(old, new)
        entry = PlanEntry(ref=w.ref_name, change=change, revision=number, summary=summary)
        if change == CHANGE_UPDATE:
            registered = f"{w.ref_name} (registered, revision {number - 1})"
            entry.diff = unified_diff(old, new, old_label=registered, new_label=f"{w.ref_name} (files)")
        entries.append(entry)
    for ref in result.removed:
        row = written.get(ref)
        entries.append(PlanEntry(ref=ref, change=CHANGE_REMOVE, revision=row[0] if row else None))
    for ref, diagnostics in result.error_diagnostics.items():
        entries.append(PlanEntry(ref=ref, change="error", diagnostics=diagnostics))
    return sorted(entries, key=lambda e: e.ref)


Registered = set[tuple[str, str, str]]  # (ref, source file, content hash) of a pack's actions


def _actions(result: SyncResult, before: Registered, after: Registered) -> list[PlanEntry]:
    """Registered actions before and after the (rolled back) sync, compared by file and content."""
    old = {ref: (f, h) for ref, f, h in before}
    new = {ref: (f, h) for ref, f, h in after}
    failed = result.actions.diagnostics
    entries = []
    for ref in sorted(set(old) | set(new) | set(failed)):
        if ref in failed:
            entries.append(PlanEntry(ref=ref, change="error", diagnostics=failed[ref]))
        elif ref not in old:
            entries.append(PlanEntry(ref=ref, change="create"))
        elif ref not in new:
            entries.append(PlanEntry(ref=ref, change=CHANGE_REMOVE))
        else:
            entries.append(PlanEntry(ref=ref, change="unchanged" if old[ref] == new[ref] else CHANGE_UPDATE))
    return entries
