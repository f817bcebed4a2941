"""Bulk registration of a pack's actions (workflows are merged from staging: sync/staging.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.workflows.checker import ActionResult


def register_actions(session: Session, pack_id: int, actions: Sequence[ActionResult], now: datetime) -> set[str]:
    """Upserts the pack's readable actions and removes those whose file is gone
    (nothing is written when the registered actions are those of the files). Returns
    the refs another pack holds (never taken over, so not registered): when empty, the
    registered actions are those of the files."""
    if session.get_bind().dialect.name == "postgresql":  # one statement (issue 15: a small pack's share)
        return {r for (r,) in session.execute(actions_repo.REGISTER_PG, register_params(pack_id, actions, now))}
    return register_generic(session, pack_id, actions, now)


def register_params(pack_id: int, actions: Sequence[ActionResult], now: datetime) -> dict[str, Any]:
    """``actions_repo.REGISTER_PG``'s parameters for the pack's readable actions (its rows: the
    refs another pack holds)."""
    readable = [(a.ref, a.file, a.content_hash, a.meta) for a in actions if a.meta is not None]
    return actions_repo.register_params(pack_id, readable, now)


def register_generic(session: Session, pack_id: int, actions: Sequence[ActionResult], now: datetime) -> set[str]:
    """``register_actions`` in four statements built by SQLAlchemy (SQLite's; on Postgres,
    the reference the one-statement path is tested against)."""
    registered = actions_repo.registered_of_pack(session, pack_id)
    wanted = {(a.ref, a.file, a.content_hash) for a in actions if a.meta is not None}
    if wanted == registered:
        return set()
    rows = []
    for a in actions:
        if a.meta is None:
            continue
        rows.append(
            {
                "ref": a.ref,
                "pack_id": pack_id,
                **a.meta,
                "source_file": a.file,
                "content_hash": a.content_hash,
                "created_at": now,
                "updated_at": now,
            }
        )
    # An action ref owned by another pack is never taken over.
    taken = actions_repo.refs_taken(session, pack_id, [r["ref"] for r in rows])
    rows = [r for r in rows if r["ref"] not in taken]
    actions_repo.upsert_many(session, rows)
    actions_repo.delete_missing(session, pack_id, {r["ref"] for r in rows})
    return taken
