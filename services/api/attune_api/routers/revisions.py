"""A workflow's history: its revisions, one revision, the diff of two."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from attune.revisions import service as revisions
from attune.revisions.schemas import RevisionDetail, RevisionDiff, RevisionSummary
from attune_api.access import Viewer
from attune_api.deps import SessionDep, WorkflowRef
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses

router = APIRouter(prefix="/api/v1/workflows", tags=["workflow history"], responses=error_responses(401, 403, 503))

MAX_REVISION = 2**31 - 1  # what the database's integer holds: larger is a 422, not a 500

Number = Annotated[int, Path(ge=1, le=MAX_REVISION, description="Revision number (1, 2, ...)")]


@router.get("/{ref}/revisions", response_model=Page[RevisionSummary], responses=error_responses(404, 422))
def list_revisions(
    ref: WorkflowRef,
    session: SessionDep,
    by: Viewer,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[RevisionSummary]:
    """A workflow's revisions, newest first (without their definitions). A deleted pack's
    workflows keep theirs for `revisions.retention_days`."""
    rows, total = revisions.list_revisions(session, ref, limit=limit, offset=offset)
    return Page(
        data=[RevisionSummary.model_validate(r) for r in rows],
        pagination=Pagination(total=total, limit=limit, offset=offset),
        message=f"{len(rows)} of {total} revisions",
    )


@router.get("/{ref}/revisions/{number}", response_model=Envelope[RevisionDetail], responses=error_responses(404, 422))
def get_revision(ref: WorkflowRef, number: Number, session: SessionDep, by: Viewer) -> Envelope[RevisionDetail]:
    """One revision, with its normalised definition."""
    found = revisions.get_revision(session, ref, number)
    return Envelope(data=RevisionDetail.model_validate(found), message=f"Revision {number} of {ref}")


@router.get(
    "/{ref}/revisions/{number}/diff", response_model=Envelope[RevisionDiff], responses=error_responses(404, 422)
)
def diff_revision(
    ref: WorkflowRef,
    number: Number,
    session: SessionDep,
    by: Viewer,
    against: Annotated[
        int | None,
        Query(ge=1, le=MAX_REVISION, description="The revision of this workflow to compare with (default: previous)"),
    ] = None,
) -> Envelope[RevisionDiff]:
    """What changed: a unified diff of the normalised YAML and a structural summary."""
    found = revisions.diff(session, ref, number, against=against)
    return Envelope(data=found, message=f"Revision {found.against} -> {number} of {ref}")
