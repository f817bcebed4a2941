from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from attune.actions.models import Action
from attune.db.upsert import upsert

_UPDATE = ("label", "description", "runner_type", "entry_point", "parameters", "source_file", "content_hash",
           "updated_at")  # fmt: skip


def all_refs(session: Session) -> set[str]:
    return set(session.exec(select(Action.ref)).all())


def registered_of_pack(session: Session, pack_id: int) -> set[tuple[str, str, str]]:
    """(ref, source file, content hash) of the pack's registered actions."""
    rows = session.exec(select(Action.ref, Action.source_file, Action.content_hash).where(Action.pack_id == pack_id))
    return {(r, f, h) for r, f, h in rows}


def refs_taken(session: Session, pack_id: int, refs: Sequence[str]) -> set[str]:
    """Those of ``refs`` that another pack registered."""
    if not refs:
        return set()
    stmt = select(Action.ref).where(col(Action.ref).in_(list(refs)), Action.pack_id != pack_id)
    return set(session.exec(stmt).all())


def upsert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    upsert(session, Action.__table__, rows, key="ref", update=_UPDATE)  # type: ignore[attr-defined]


def delete_missing(session: Session, pack_id: int, keep: set[str]) -> None:
    stmt = delete(Action).where(col(Action.pack_id) == pack_id)
    if keep:
        stmt = stmt.where(col(Action.ref).not_in(keep))
    session.execute(stmt)


def exists_outside(session: Session, pack_id: int, ref: str) -> bool:
    return session.exec(select(Action.id).where(Action.ref == ref, Action.pack_id != pack_id)).first() is not None
