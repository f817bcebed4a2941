"""Reading a workflow's history, comparing two revisions, and the retention sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from attune.db.types import utcnow
from attune.errors import NotFound
from attune.revisions import repository
from attune.revisions.content import summarise, unified_diff
from attune.revisions.models import WorkflowRevision
from attune.revisions.schemas import RevisionDiff


def list_revisions(session: Session, ref: str, *, limit: int, offset: int) -> tuple[Sequence[Any], int]:
    rows, total = repository.list_page(session, ref, limit=limit, offset=offset)
    if total == 0:
        raise NotFound(f"Workflow '{ref}' has no revisions")
    return rows, total


def get_revision(session: Session, ref: str, number: int) -> WorkflowRevision:
    found = repository.get(session, ref, number)
    if found is None:
        raise NotFound(f"Workflow '{ref}' has no revision {number}")
    return found


def diff(session: Session, ref: str, number: int, *, against: int | None) -> RevisionDiff:
    """Revision ``against`` (default: the one before; none before the first) -> ``number``."""
    new = get_revision(session, ref, number)
    if against is None:
        against = number - 1 if number > 1 else None
    old = None if against is None else get_revision(session, ref, against)
    old_def = None if old is None else old.definition
    return RevisionDiff(
        ref=ref,
        number=number,
        against=against,
        summary=summarise(old_def, new.definition),
        diff=unified_diff(
            old_def,
            new.definition,
            old_label=f"{ref} (revision {against})" if against is not None else "/dev/null",
            new_label=f"{ref} (revision {number})",
        ),
    )


def sweep_expired(session: Session, *, retention_days: float) -> int:
    """Removes the history of packs deleted more than ``retention_days`` ago."""
    return repository.sweep(session, utcnow() - timedelta(days=retention_days))
