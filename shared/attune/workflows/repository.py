from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, select

from attune.workflows.models import WorkflowDefinition

_T = WorkflowDefinition.__table__.c  # type: ignore[attr-defined]


def exists_outside(session: Session, pack_id: int, ref: str) -> bool:
    return session.execute(sa.select(_T.id).where(_T.ref == ref, _T.pack_id != pack_id)).first() is not None


def get_by_ref(session: Session, ref: str) -> WorkflowDefinition | None:
    return session.exec(select(WorkflowDefinition).where(WorkflowDefinition.ref == ref)).first()


def _has_tag(session: Session, tag: str) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        each = sa.func.json_each(_T.tags).table_valued("value")
        return sa.exists(sa.select(1).select_from(each).where(each.c.value == tag))
    return sa.type_coerce(_T.tags, JSONB).contains([tag])  # served by the GIN index


def list_page(
    session: Session, *, pack_id: int | None, tag: str | None, limit: int, offset: int
) -> tuple[Sequence[WorkflowDefinition], int]:
    stmt = select(WorkflowDefinition)
    count = select(func.count()).select_from(WorkflowDefinition)
    if pack_id is not None:
        stmt = stmt.where(WorkflowDefinition.pack_id == pack_id)
        count = count.where(WorkflowDefinition.pack_id == pack_id)
    if tag is not None:
        cond = _has_tag(session, tag)
        stmt = stmt.where(cond)
        count = count.where(cond)
    total = session.exec(count).one()
    rows = session.exec(stmt.order_by(WorkflowDefinition.ref).limit(limit).offset(offset)).all()
    return rows, total
