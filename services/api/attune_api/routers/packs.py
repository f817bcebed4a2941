from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import Field
from sqlmodel import Session

from attune.access.principal import Principal
from attune.access.roles import Role
from attune.jobs import pipeline
from attune.jobs.models import Job
from attune.packs import service as packs
from attune.packs.schemas import PackCreate, PackPublic, PackUpdate
from attune_api.access import Admin, Editor, PackScope, Viewer, allow
from attune_api.deps import PackRef, SettingsDep, read, write
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses


class PackSaved(Envelope[PackPublic]):
    job_id: uuid.UUID = Field(description="The auto-sync job started for this pack: GET /api/v1/jobs/{job_id}")


# a key limited to packs may create one of them: the body's ref is checked
PackCreator = Annotated[Principal, Depends(allow(Role.EDITOR, PackScope.HANDLER))]

router = APIRouter(prefix="/api/v1/packs", tags=["packs"], responses=error_responses(401, 403, 503))


def _queued(session: Session, job: Job) -> str:
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
async def create_pack(body: PackCreate, by: PackCreator, settings: SettingsDep) -> PackSaved:
    """Create a pack record; its workflows are then synced in the background. Label, version
    and description left out of the body come from the pack's own `pack.yaml` (the body wins)."""

    by.require_pack(body.ref)

    def create(session: Session) -> PackSaved:
        pack = packs.create_pack(session, body, packs_base_dir=settings.packs_base_dir)
        job = pipeline.add_auto_sync(session, pack, by=by)
        session.commit()
        message = "Pack created" + _queued(session, job)
        return PackSaved(data=PackPublic.model_validate(pack), job_id=job.id, message=message)

    return await write(create)


@router.get("", response_model=Page[PackPublic])
async def list_packs(
    by: Viewer,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[PackPublic]:
    """Packs ordered by ref, a page at a time."""

    def page(session: Session) -> Page[PackPublic]:
        rows, total = packs.list_packs(session, limit=limit, offset=offset)
        return Page(
            data=[PackPublic.model_validate(p) for p in rows],
            pagination=Pagination(total=total, limit=limit, offset=offset),
            message=f"{len(rows)} of {total} packs",
        )

    return await read(page)


@router.get("/{ref}", response_model=Envelope[PackPublic], responses=error_responses(404, 422))
async def get_pack(ref: PackRef, by: Viewer) -> Envelope[PackPublic]:
    """One pack by its ref."""

    def one(session: Session) -> Envelope[PackPublic]:
        return Envelope(data=PackPublic.model_validate(packs.get_pack(session, ref)), message="Pack found")

    return await read(one)


@router.put("/{ref}", response_model=PackSaved, responses=error_responses(404, 413, 422))
async def update_pack(ref: PackRef, body: PackUpdate, by: Editor) -> PackSaved:
    """Partial update; the pack's workflows are then re-synced in the background."""

    def update(session: Session) -> PackSaved:
        pack = packs.update_pack(session, ref, body)
        job = pipeline.add_auto_sync(session, pack, by=by)
        session.commit()
        message = "Pack updated" + _queued(session, job)
        return PackSaved(data=PackPublic.model_validate(pack), job_id=job.id, message=message)

    return await write(update)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 422))
async def delete_pack(ref: PackRef, by: Admin) -> Response:
    """Delete the pack and its registered workflows and actions (files on disk are untouched)."""

    def delete(session: Session) -> None:
        packs.delete_pack(session, ref, by=by.actor)
        session.commit()

    await write(delete)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
