from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from attune.db.upsert import upsert
from attune.workflows.models import WorkflowDefinition

_UPDATE = ("name", "label", "description", "version", "param_schema", "out_schema", "definition", "tags",
           "warnings", "source_file", "content_hash", "context_hash", "updated_at")  # fmt: skip


@dataclass(slots=True)
class Existing:
    """What a sync needs to know about a registered workflow to skip an unchanged file."""

    id: int
    content_hash: str
    context_hash: str
    warnings: list[dict[str, Any]]


_T = WorkflowDefinition.__table__.c  # type: ignore[attr-defined]


def existing_for_pack(session: Session, pack_id: int) -> dict[str, Existing]:
    rows = session.execute(
        sa.select(_T.ref, _T.id, _T.content_hash, _T.context_hash, _T.warnings).where(_T.pack_id == pack_id)
    ).all()
    return {ref: Existing(id_, h, c, w) for ref, id_, h, c, w in rows}


def ids_by_ref(session: Session, refs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(refs), 5000):
        chunk = list(refs[start : start + 5000])
        rows = session.execute(sa.select(_T.ref, _T.id).where(_T.ref.in_(chunk))).all()
        out.update({r: i for r, i in rows})
    return out


def refs_outside_pack(session: Session, pack_id: int) -> set[str]:
    return set(
        session.exec(select(WorkflowDefinition.ref).where(WorkflowDefinition.pack_id != pack_id)).all()
    )


def upsert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    upsert(session, WorkflowDefinition.__table__, rows, key="ref", update=_UPDATE)  # type: ignore[attr-defined]


def delete_refs(session: Session, pack_id: int, refs: Sequence[str]) -> None:
    for start in range(0, len(refs), 5000):
        chunk = list(refs[start : start + 5000])
        session.execute(
            delete(WorkflowDefinition).where(
                col(WorkflowDefinition.pack_id) == pack_id, col(WorkflowDefinition.ref).in_(chunk)
            )
        )


def get_by_ref(session: Session, ref: str) -> WorkflowDefinition | None:
    return session.exec(select(WorkflowDefinition).where(WorkflowDefinition.ref == ref)).first()


def list_page(
    session: Session, *, pack_id: int | None, tag: str | None, limit: int, offset: int
) -> tuple[Sequence[WorkflowDefinition], int]:
    stmt = select(WorkflowDefinition)
    count = select(func.count()).select_from(WorkflowDefinition)
    if pack_id is not None:
        stmt = stmt.where(WorkflowDefinition.pack_id == pack_id)
        count = count.where(WorkflowDefinition.pack_id == pack_id)
    if tag is not None:
        cond = sa.type_coerce(_T.tags, JSONB).contains([tag])  # served by the GIN index
        stmt = stmt.where(cond)
        count = count.where(cond)
    total = session.exec(count).one()
    rows = session.exec(stmt.order_by(WorkflowDefinition.ref).limit(limit).offset(offset)).all()
    return rows, total
