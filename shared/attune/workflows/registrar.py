"""Bulk registration of a pack's checked workflows and actions (no query per workflow)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.workflows import repository as workflows_repo
from attune.workflows.checker import ActionResult, WorkflowResult


def workflow_row(pack_id: int, r: WorkflowResult, context_hash: str, now: datetime) -> dict[str, Any]:
    d = r.definition
    assert d is not None
    return {
        "ref": r.ref,
        "pack_id": pack_id,
        "name": r.name,
        "label": d["label"],
        "description": d["description"],
        "version": d["version"],
        "param_schema": d["parameters"],
        "out_schema": d["output"],
        "definition": d,
        "tags": d["tags"],
        "warnings": [w.to_dict() for w in r.warnings],
        "source_file": r.file,
        "content_hash": r.content_hash,
        "context_hash": context_hash,
        "created_at": now,
        "updated_at": now,
    }


def register_workflows(
    session: Session, pack_id: int, results: Sequence[WorkflowResult], context_hash: str, now: datetime
) -> dict[str, int]:
    """Upserts the valid results by ref; returns ref -> id for them."""
    rows = [workflow_row(pack_id, r, context_hash, now) for r in results if r.ok]
    workflows_repo.upsert_many(session, rows)
    return workflows_repo.ids_by_ref(session, [r["ref"] for r in rows])


def register_actions(session: Session, pack_id: int, actions: Sequence[ActionResult], now: datetime) -> None:
    """Upserts the pack's readable actions and removes those whose file is gone."""
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
    taken = actions_repo.refs_outside_pack(session, pack_id)
    rows = [r for r in rows if r["ref"] not in taken]
    actions_repo.upsert_many(session, rows)
    actions_repo.delete_missing(session, pack_id, {r["ref"] for r in rows})
