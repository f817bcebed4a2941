"""All SQL of revisions outside a sync (the sync's own: sync/history.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text
from sqlmodel import Session

from attune.db.types import TZDateTime
from attune.packs.models import Pack
from attune.revisions.models import CHANGE_REMOVE, WorkflowRevision

R = WorkflowRevision.__table__  # type: ignore[attr-defined]
_LISTED = [c for c in R.c if c.name != "definition"]


def list_page(session: Session, ref: str, *, limit: int, offset: int) -> tuple[Sequence[Any], int]:
    """A workflow's revisions, newest first, without their definitions."""
    total = session.execute(select(func.count()).select_from(R).where(R.c.ref == ref)).scalar_one()
    rows = session.execute(
        select(*_LISTED).where(R.c.ref == ref).order_by(R.c.number.desc()).limit(limit).offset(offset)
    ).all()
    return rows, total


def get(session: Session, ref: str, number: int) -> WorkflowRevision | None:
    stmt = select(WorkflowRevision).where(R.c.ref == ref, R.c.number == number)
    return session.execute(stmt).scalar_one_or_none()


_TOMBSTONE_PACK = text(
    """
    INSERT INTO workflow_revisions (ref, number, pack_ref, change, author, created_at)
    SELECT w.ref, COALESCE((SELECT max(r.number) FROM workflow_revisions r WHERE r.ref = w.ref), 0) + 1,
           :pack_ref, :remove, :author, :now
    FROM workflow_definitions w
    WHERE w.pack_id = :pack_id
    """
).bindparams(bindparam("now", type_=TZDateTime))


def tombstone_pack(session: Session, pack: Pack, *, author: str, now: datetime) -> None:
    """A tombstone for each workflow of a pack about to be deleted, in one statement."""
    params = {"pack_id": pack.id, "pack_ref": pack.ref, "remove": CHANGE_REMOVE, "author": author}
    session.execute(_TOMBSTONE_PACK, {**params, "now": now})


def sweep(session: Session, older_than: datetime) -> int:
    """Removes the revisions of deleted packs whose last revision is older than ``older_than``."""
    gone = (
        select(R.c.pack_ref)
        .where(R.c.pack_ref.not_in(select(Pack.__table__.c.ref)))  # type: ignore[attr-defined]
        .group_by(R.c.pack_ref)
        .having(func.max(R.c.created_at) < older_than)
    )
    result = session.execute(delete(R).where(R.c.pack_ref.in_(gone)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
