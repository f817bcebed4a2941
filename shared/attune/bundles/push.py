"""A pushed version's job on the worker: plan against the live registry, then keep the
sync (the pack's active version switches in the same transaction) or roll it back.

The plan is computed by the sync itself (``sync.plan.plan_then_decide``): activating
reads and checks the files once, and what was planned is what was done.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from attune.bundles import cache
from attune.bundles import repository as repo
from attune.bundles.models import PackVersion, VersionState
from attune.config import Settings
from attune.db.types import utcnow
from attune.errors import NotFound
from attune.packs.models import Pack
from attune.sync.engine import Target
from attune.sync.plan import has_errors, plan_then_decide
from attune.sync.schemas import PlanResult, PushResult, SyncResult, dump_result, summarise


@dataclass(frozen=True, slots=True)
class PushRequest:
    """What a push job was asked (its options): the version, and whether to activate it."""

    version_id: int
    activate: bool = True
    allow_errors: bool = False

    @classmethod
    def of(cls, options: dict[str, Any]) -> PushRequest:
        return cls(int(options["version_id"]), bool(options.get("activate", True)), bool(options.get("allow_errors")))

    def options(self) -> dict[str, Any]:
        return {"version_id": self.version_id, "activate": self.activate, "allow_errors": self.allow_errors}

    def accepts(self, planned: PlanResult) -> bool:
        return self.activate and (self.allow_errors or not has_errors(planned))


def version_of(session: Session, pack: Pack, version_id: int) -> PackVersion:
    assert pack.id is not None
    version = repo.get_version(session, pack.id, version_id)
    if version is None:
        raise NotFound(f"Version {version_id} of pack '{pack.ref}' not found")
    return version


def source_root(session: Session, settings: Settings, pack: Pack, version_id: int | None) -> tuple[Path, str] | None:
    """(this worker's copy of the version's pack directory, its sha256); None for a pack
    synced from its directory (no version given, none active)."""
    wanted = version_id if version_id is not None else pack.active_version_id
    if wanted is None:
        return None
    version = version_of(session, pack, wanted)
    return cache.materialise(session, settings, version), version.sha256


def retarget(target: Target, root: Path, sha256: str, *, source_changes: bool) -> Target:
    """The target reading the version's copy. A pack changing source reads every file (a
    stat key of one copy says nothing of another's content)."""
    return dataclasses.replace(target, root=root, sha256=sha256, force=target.force or source_changes)


def run(session: Session, target: Target, request: PushRequest, sync: Callable[[], SyncResult]) -> PushResult:
    """The plan of ``sync`` (the whole pack's, or a chunked one's registering step), kept
    when the request accepts it; the version row records the outcome."""
    planned, synced, kept = plan_then_decide(session, target, sync, keep=request.accepts)
    planned.job_id = target.job_id  # the plan is this job's (it read null in the answer and the version)
    errors = has_errors(planned)
    now = utcnow()
    state = VersionState.VALID if not errors else VersionState.ERRORS if kept else VersionState.REFUSED
    repo.set_version(session, request.version_id, state=state, validation=dump_result(planned))
    if kept:
        repo.activate(session, target.pack_id, request.version_id, now)
        outcome, reason = "activated", "The pack now syncs from this version"
        if errors:
            reason += " (with errors: allow_errors was given)"
    elif errors:
        outcome = "refused"
        reason = "The plan has errors: the version is stored, not activated (allow_errors=true activates it anyway)"
    else:
        outcome, reason = "validated", "Validated; not activated (activate=false)"
    return PushResult(
        pack_ref=target.pack_ref,
        version_id=request.version_id,
        sha256=target.sha256,
        activated=kept,
        outcome=outcome,
        reason=reason,
        plan=planned,
        synced=summarise(synced) if kept else None,
    )


def failed(session: Session, version_id: int) -> None:
    repo.set_version(session, version_id, state=VersionState.FAILED)
