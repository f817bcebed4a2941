from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session

from attune.access.principal import Principal
from attune.access.roles import Role
from attune.jobs import service as jobs
from attune.jobs.schemas import BatchSummary, JobPublic
from attune.packs import service as packs
from attune_api.access import PackScope, Viewer, allow
from attune_api.deps import PackRef, read
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses

# a key limited to packs sees its packs' jobs (the handler checks the job's pack)
JobViewer = Annotated[Principal, Depends(allow(Role.VIEWER, PackScope.HANDLER))]

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=error_responses(401, 403, 503))


@router.get("/jobs/batches/{batch_id}", response_model=Envelope[BatchSummary], responses=error_responses(404, 422))
async def get_batch(batch_id: uuid.UUID, by: JobViewer) -> Envelope[BatchSummary]:
    """Overall progress of the jobs one POST /api/v1/packs/sync started (a key limited to
    packs: a batch of its packs only)."""
    summary = await read(jobs.batch_summary, batch_id, by)
    done = summary.jobs["succeeded"] + summary.jobs["failed"]
    return Envelope(data=summary, message=f"{done} of {summary.jobs_total} jobs finished")


@router.get("/jobs/{job_id}", response_model=Envelope[JobPublic], responses=error_responses(404, 422))
async def get_job(job_id: uuid.UUID, by: JobViewer) -> Envelope[JobPublic]:
    """Status, progress and result of a sync or validate job (manual, automatic or bulk)."""

    def one(session: Session) -> Envelope[JobPublic]:
        job = jobs.get_job(session, job_id)
        by.require_pack(job.pack_ref, named=False)  # a key limited to packs: its packs' jobs only
        return Envelope(data=JobPublic.of(job), message=f"Job {job.status}")

    return await read(one)


@router.get("/packs/{ref}/jobs", response_model=Page[JobPublic], responses=error_responses(404, 422))
async def list_pack_jobs(
    ref: PackRef,
    by: Viewer,
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[JobPublic]:
    """A pack's jobs, newest first, each with its result's summary (the full result: GET /api/v1/jobs/{id})."""

    def page(session: Session) -> Page[JobPublic]:
        packs.get_pack(session, ref)
        rows, total = jobs.list_pack_jobs(session, ref, limit=limit, offset=offset)
        return Page(
            data=[JobPublic.listed(j) for j in rows],
            pagination=Pagination(total=total, limit=limit, offset=offset),
            message=f"{len(rows)} of {total} jobs",
        )

    return await read(page)
