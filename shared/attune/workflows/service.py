from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from attune.errors import NotFound
from attune.packs import service as packs
from attune.workflows import repository
from attune.workflows.models import WorkflowDefinition


def list_workflows(
    session: Session, *, pack_ref: str | None, tag: str | None, limit: int, offset: int
) -> tuple[Sequence[WorkflowDefinition], int]:
    pack_id = packs.get_pack(session, pack_ref).id if pack_ref else None
    return repository.list_page(session, pack_id=pack_id, tag=tag, limit=limit, offset=offset)


def get_workflow(session: Session, ref: str) -> WorkflowDefinition:
    wf = repository.get_by_ref(session, ref)
    if wf is None:
        raise NotFound(f"Workflow '{ref}' not found")
    return wf
