"""INSERT ... ON CONFLICT DO UPDATE for the dialects we run on, in bounded batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

BATCH_ROWS = 500  # keeps every statement well under the driver's bound-parameter limit


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"upsert is not implemented for the {dialect} dialect")


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, key: str, update: Sequence[str]) -> None:
    """Inserts ``rows``; where ``key`` already exists, updates the ``update`` columns."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    for start in range(0, len(rows), BATCH_ROWS):
        stmt = _insert(dialect, table).values(list(rows[start : start + BATCH_ROWS]))
        stmt = stmt.on_conflict_do_update(index_elements=[key], set_={c: getattr(stmt.excluded, c) for c in update})
        session.execute(stmt)
