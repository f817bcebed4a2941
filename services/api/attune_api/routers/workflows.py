from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from attune.access.principal import Principal
from attune.access.roles import Role
from attune.refs import PACK_REF_MAX, PACK_REF_PATTERN
from attune.workflows import service as workflows
from attune.workflows.schemas import WorkflowDetail, WorkflowSummary
from attune_api.access import PackScope, Viewer, allow
from attune_api.deps import WorkflowRef, read
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=error_responses(401, 403, 503))


def _summary(wf, pack_ref: str) -> WorkflowSummary:  # type: ignore[no-untyped-def]
    return WorkflowSummary.model_validate({**wf.model_dump(), "pack_ref": pack_ref})


@router.get("", response_model=Page[WorkflowSummary], responses=error_responses(404, 422))
async def list_workflows(
    by: Annotated[Principal, Depends(allow(Role.VIEWER, PackScope.HANDLER))],
    pack: Annotated[
        str | None, Query(max_length=PACK_REF_MAX, pattern=PACK_REF_PATTERN, description="Only this pack's")
    ] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Only workflows with this tag")] = None,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[WorkflowSummary]:
    """Registered workflow definitions, ordered by ref. A key limited to packs must name
    one of its packs (`pack`)."""
    if pack is None:
        by.require_every_pack("list every pack's workflows: name one of yours with ?pack=")
    else:
        by.require_pack(pack)

    def page(session: Session) -> Page[WorkflowSummary]:
        rows, total = workflows.list_workflows(session, pack_ref=pack, tag=tag, limit=limit, offset=offset)
        return Page(
            data=[_summary(w, w.ref.split(".", 1)[0]) for w in rows],
            pagination=Pagination(total=total, limit=limit, offset=offset),
            message=f"{len(rows)} of {total} workflows",
        )

    return await read(page)


@router.get("/{ref}", response_model=Envelope[WorkflowDetail], responses=error_responses(404, 422))
async def get_workflow(ref: WorkflowRef, by: Viewer) -> Envelope[WorkflowDetail]:
    """One workflow: its normalised definition, schemas, warnings, source file and hash."""

    def one(session: Session) -> Envelope[WorkflowDetail]:
        wf = workflows.get_workflow(session, ref)
        detail = WorkflowDetail.model_validate({**wf.model_dump(), "pack_ref": ref.split(".", 1)[0]})
        return Envelope(data=detail, message="Workflow found")

    return await read(one)
