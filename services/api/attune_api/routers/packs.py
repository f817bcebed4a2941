from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from attune.jobs import pipeline
from attune.jobs.models import Job
from attune.packs import service as packs
from attune.packs.models import PackCreate, PackPublic, PackUpdate
from attune_api.deps import CurrentUser, PackRef, SessionDep
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses


class PackSaved(Envelope[PackPublic]):
    job_id: uuid.UUID = Field(description="The auto-sync job started for this pack: GET /api/v1/jobs/{job_id}")


router = APIRouter(prefix="/api/v1/packs", tags=["packs"], responses=error_responses(401, 503))


def _queued(session: SessionDep, job: Job) -> str:
    """Enqueues the pack's auto-sync (after the commit: a broker outage never fails the pack
    operation); the sentence the response message ends with."""
    failure = pipeline.enqueue(session, job)
    if failure is not None:
        return f"; workflow auto-sync could not be queued ({failure}), job {job.id} failed"
    return f"; workflow auto-sync started (job {job.id})"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PackSaved,
    responses=error_responses(409, 413, 422),
)
def create_pack(body: PackCreate, session: SessionDep, user: CurrentUser) -> PackSaved:
    """Create a pack record; its workflows are then synced in the background."""
    pack = packs.create_pack(session, body)
    job = pipeline.add_auto_sync(session, pack, user_id=user.id)
    session.commit()
    return PackSaved(
        data=PackPublic.model_validate(pack), job_id=job.id, message="Pack created" + _queued(session, job)
    )


@router.get("", response_model=Page[PackPublic])
def list_packs(
    session: SessionDep,
    user: CurrentUser,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[PackPublic]:
    """Packs ordered by ref, a page at a time."""
    rows, total = packs.list_packs(session, limit=limit, offset=offset)
    return Page(
        data=[PackPublic.model_validate(p) for p in rows],
        pagination=Pagination(total=total, limit=limit, offset=offset),
        message=f"{len(rows)} of {total} packs",
    )


@router.get("/{ref}", response_model=Envelope[PackPublic], responses=error_responses(404, 422))
def get_pack(ref: PackRef, session: SessionDep, user: CurrentUser) -> Envelope[PackPublic]:
    """One pack by its ref."""
    return Envelope(data=PackPublic.model_validate(packs.get_pack(session, ref)), message="Pack found")


@router.put("/{ref}", response_model=PackSaved, responses=error_responses(404, 413, 422))
def update_pack(ref: PackRef, body: PackUpdate, session: SessionDep, user: CurrentUser) -> PackSaved:
    """Partial update; the pack's workflows are then re-synced in the background."""
    pack = packs.update_pack(session, ref, body)
    job = pipeline.add_auto_sync(session, pack, user_id=user.id)
    session.commit()
    return PackSaved(
        data=PackPublic.model_validate(pack), job_id=job.id, message="Pack updated" + _queued(session, job)
    )


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 422))
def delete_pack(ref: PackRef, session: SessionDep, user: CurrentUser) -> Response:
    """Delete the pack and its registered workflows and actions (files on disk are untouched)."""
    packs.delete_pack(session, ref, by=user.login)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
