"""Bulk loading with COPY on Postgres (a multi-row INSERT elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Table, bindparam, text
from sqlmodel import Session


def copy_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Loads ``rows`` (tuples in ``columns`` order; JSON columns as JSON text) in the session's transaction."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in columns)
        # (large values compressed with lz4 where the server has it: db/engine.py)
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as cp:  # type: ignore[union-attr]
            for row in rows:
                cp.write_row(row)
        return
    # Elsewhere (SQLite): one executemany of a plain INSERT. JSON columns arrive as JSON
    # text and are bound as they are; the other columns through their types (UUIDs).
    batch = [dict(zip(columns, row, strict=True)) for row in rows]
    if batch:
        typed = [bindparam(c, type_=table.c[c].type) for c in columns if not isinstance(table.c[c].type, JSON)]
        cols = ", ".join(f'"{c}"' for c in columns)
        values = ", ".join(f":{c}" for c in columns)
        conn.execute(text(f'INSERT INTO "{table.name}" ({cols}) VALUES ({values})').bindparams(*typed), batch)
