from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from attune.packs.models import Pack


def get_by_ref(session: Session, ref: str, *, for_update: bool = False, for_share: bool = False) -> Pack | None:
    stmt = select(Pack).where(Pack.ref == ref)
    if for_update or for_share:
        stmt = stmt.with_for_update(read=for_share and not for_update)
    return session.exec(stmt).first()


def ids_by_ref(session: Session, refs: Sequence[str], *, for_share: bool = False) -> dict[str, int]:
    """ref -> id of those of ``refs`` that exist (in batches under SQLite's parameter limit)."""
    found: dict[str, int] = {}
    for start in range(0, len(refs), 500):
        stmt = select(Pack.ref, Pack.id).where(col(Pack.ref).in_(list(refs[start : start + 500])))
        if for_share:
            stmt = stmt.with_for_update(read=True)
        found.update({ref: pack_id for ref, pack_id in session.exec(stmt).all() if pack_id is not None})
    return found


def list_page(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Pack], int]:
    total = session.exec(select(func.count()).select_from(Pack)).one()
    rows = session.exec(select(Pack).order_by(Pack.ref).limit(limit).offset(offset)).all()
    return rows, total


def list_refs(session: Session) -> list[str]:
    return list(session.exec(select(Pack.ref).order_by(Pack.ref)).all())


def add(session: Session, pack: Pack) -> Pack:
    session.add(pack)
    session.flush()
    return pack


def delete(session: Session, pack: Pack) -> None:
    session.delete(pack)
    session.flush()


def get_by_id(session: Session, pack_id: int) -> Pack | None:
    return session.get(Pack, pack_id)
