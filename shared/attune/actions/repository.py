from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, text
from sqlmodel import Session, col, select

from attune.actions.models import Action
from attune.db.engine import dumps_json
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


# Postgres: a pack's actions registered in one statement of constant text (the rows as one
# JSON array, each action's parameters in it as JSON text: eight arrays cost the driver 0.2 ms
# of a worker's CPU per pack to encode): refs another pack holds are left to it (reported),
# the others inserted or, where changed, updated, the pack's actions whose file is gone
# deleted. An action whose row already says what its file says is not written (its
# updated_at stays).
REGISTER_PG = text(
    """
    WITH input AS (
        SELECT * FROM json_to_recordset(CAST(:actions AS JSON))
            AS u(ref TEXT, label TEXT, description TEXT, runner_type TEXT, entry_point TEXT, parameters TEXT,
                 source_file TEXT, content_hash TEXT)
    ), taken AS (
        SELECT a.ref FROM actions a JOIN input i ON i.ref = a.ref WHERE a.pack_id <> :pack_id
    ), kept AS (
        SELECT * FROM input WHERE ref NOT IN (SELECT ref FROM taken)
    ), written AS (
        INSERT INTO actions AS a (ref, pack_id, label, description, runner_type, entry_point, parameters,
                                  source_file, content_hash, created_at, updated_at)
        SELECT k.ref, :pack_id, k.label, k.description, k.runner_type, k.entry_point, CAST(k.parameters AS JSONB),
               k.source_file, k.content_hash, :now, :now
        FROM kept k
        ON CONFLICT (ref) DO UPDATE SET label = EXCLUDED.label, description = EXCLUDED.description,
            runner_type = EXCLUDED.runner_type, entry_point = EXCLUDED.entry_point,
            parameters = EXCLUDED.parameters, source_file = EXCLUDED.source_file,
            content_hash = EXCLUDED.content_hash, updated_at = EXCLUDED.updated_at
        WHERE a.pack_id = EXCLUDED.pack_id
          AND (a.label, a.description, a.runner_type, a.entry_point, a.parameters, a.source_file, a.content_hash)
              IS DISTINCT FROM (EXCLUDED.label, EXCLUDED.description, EXCLUDED.runner_type, EXCLUDED.entry_point,
                                EXCLUDED.parameters, EXCLUDED.source_file, EXCLUDED.content_hash)
        RETURNING 1
    ), gone AS (
        DELETE FROM actions a WHERE a.pack_id = :pack_id AND a.ref NOT IN (SELECT ref FROM kept)
        RETURNING 1
    )
    SELECT ref FROM taken
    """
).bindparams(bindparam("now", type_=Action.__table__.c.updated_at.type))  # type: ignore[attr-defined]


Meta = tuple[str, str, str, dict[str, Any]]  # an action's ref, source file, content hash, meta


def register_params(pack_id: int, metas: Sequence[Meta], now: Any) -> dict[str, Any]:
    """REGISTER_PG's parameters: the pack's actions become those of ``metas`` (each readable
    action file's); its rows are the refs another pack holds (not taken over)."""
    rows = [
        {
            "ref": ref,
            "label": meta["label"],
            "description": meta["description"],
            "runner_type": meta["runner_type"],
            "entry_point": meta["entry_point"],
            "parameters": dumps_json(meta["parameters"]),  # None: JSON null, as the ORM writes it
            "source_file": source_file,
            "content_hash": content_hash,
        }
        for ref, source_file, content_hash, meta in metas
    ]
    return {"actions": dumps_json(rows), "pack_id": pack_id, "now": now}


def delete_missing(session: Session, pack_id: int, keep: set[str]) -> None:
    stmt = delete(Action).where(col(Action.pack_id) == pack_id)
    if keep:
        stmt = stmt.where(col(Action.ref).not_in(keep))
    session.execute(stmt)


def exists_outside(session: Session, pack_id: int, ref: str) -> bool:
    return session.exec(select(Action.id).where(Action.ref == ref, Action.pack_id != pack_id)).first() is not None
