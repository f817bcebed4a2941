"""Manual sync and validate of a pack's workflows: enqueue, then wait for the worker."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from attune.db.engine import get_engine, read_only
from attune.jobs import service as jobs
from attune.jobs.models import JobKind, JobStatus, JobTrigger
from attune.jobs.schemas import JobPublic
from attune.packs.models import PackRefStr
from attune_api import dispatch
from attune_api.deps import CurrentUser, PackRef, SessionDep, SettingsDep
from attune_api.schemas import Envelope, error_responses
from attune_api.waiter import wait_for_job

router = APIRouter(prefix="/api/v1/packs", tags=["pack workflows"], responses=error_responses(401, 503))

SYNC_EXAMPLE: dict[str, Any] = {
    "data": {
        "pack_ref": "my_pack",
        "loaded_count": 5,
        "registered_count": 5,
        "workflows": [{"ref_name": "my_pack.deploy_app", "created": True, "workflow_def_id": 123, "warnings": []}],
        "errors": [],
    },
    "message": "Pack workflows synced successfully",
}
VALIDATE_EXAMPLE: dict[str, Any] = {
    "data": {
        "pack_ref": "my_pack",
        "validated_count": 5,
        "error_count": 1,
        "errors": {
            "my_pack.broken_workflow": [
                "Missing required field: version",
                "Task 'step1' references undefined action 'invalid.action'",
            ]
        },
    },
    "message": "Pack workflows validated",
}


class WorkflowSyncEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    ref_name: str
    created: bool
    workflow_def_id: int
    warnings: list[str]
    diagnostics: list[dict[str, Any]] = Field(default_factory=list, description="Structured warnings")


class SyncResult(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [SYNC_EXAMPLE["data"]]})

    pack_ref: str
    loaded_count: int
    registered_count: int
    workflows: list[WorkflowSyncEntry]
    errors: list[str]
    job_id: uuid.UUID | None = None


class ValidateResult(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [VALIDATE_EXAMPLE["data"]]})

    pack_ref: str
    validated_count: int
    error_count: int
    errors: dict[str, list[str]]
    job_id: uuid.UUID | None = None


class Accepted(BaseModel):
    job_id: uuid.UUID
    status: str
    location: str


def _outcome(job_id: uuid.UUID) -> tuple[str, str | None, str | None, bool]:
    with Session(read_only(get_engine()), expire_on_commit=False) as s:
        return jobs.outcome(s, job_id)


_FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value)


async def _run(
    request: Request,
    ref: str,
    kind: JobKind,
    session: Session,
    user_id: int | None,
    wait_s: float,
    options: dict[str, Any] | None = None,
) -> Response:
    job = await run_in_threadpool(
        dispatch.start_pack_job, session, ref, kind, JobTrigger.MANUAL, user_id=user_id, options=options
    )
    job_id = job.id

    async def is_done() -> bool:
        status, _, _, _ = await run_in_threadpool(_outcome, job_id)
        return status in _FINISHED

    await wait_for_job(getattr(request.app.state, "redis", None), job_id, wait_s, is_done)
    status, error, result_text, pack_exists = await run_in_threadpool(_outcome, job_id)
    location = f"/api/v1/jobs/{job_id}"
    verb = "sync" if kind == JobKind.SYNC else "validate"
    if status == JobStatus.SUCCEEDED.value and result_text is not None:
        message = "Pack workflows synced successfully" if kind == JobKind.SYNC else "Pack workflows validated"
        # The worker stored the result (with its job_id) as JSON: sent as is, never decoded here.
        body_text = '{"data":' + result_text + ',"message":' + json.dumps(message) + "}"
        return Response(body_text, media_type="application/json")
    if status == JobStatus.FAILED.value and not pack_exists:
        # the pack was deleted while its job waited or ran: what the caller asked for is gone
        return JSONResponse({"error": f"Pack '{ref}' not found", "job_id": str(job_id)}, status_code=404)
    if status == JobStatus.FAILED.value:
        return JSONResponse({"error": f"Failed to {verb} workflows: {error}", "job_id": str(job_id)}, status_code=500)
    body = {
        "data": Accepted(job_id=job_id, status=status, location=location).model_dump(mode="json"),
        "message": f"The {verb} is still running: poll {location}",
    }
    return JSONResponse(body, status_code=202, headers={"Location": location})


WaitQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=3600,
        description="Seconds to wait for the result before answering 202 with the job to poll "
        "(default: celery.result_wait_seconds; 0 answers 202 at once unless the job is done)",
    ),
]

_COMMON = {
    **error_responses(404, 422),
    202: {
        "model": Envelope[Accepted],
        "description": "Still running after the configured wait: poll the job",
    },
    500: {"description": "The job failed (the worker raised)"},
}


@router.post(
    "/{ref}/workflows/sync",
    response_model=Envelope[SyncResult],
    responses={**_COMMON, 200: {"content": {"application/json": {"example": SYNC_EXAMPLE}}}},
)
async def sync_workflows(
    ref: PackRef,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    full: Annotated[
        bool, Query(description="Read and check every file, even those unchanged since the last sync")
    ] = False,
    wait: WaitQuery = None,
) -> Response:
    """Load, validate and register the pack's workflow files; waits for the worker's result.

    Invalid workflows are listed in `errors` and never block the valid ones.
    Unchanged files (same inode, size and modification time, calls resolving as
    before) are not read again (`unchanged_count`). Workflows whose file was
    removed are deleted (listed in `removed`)."""
    options = {"full": True} if full else None
    wait_s = settings.celery.result_wait_seconds if wait is None else wait
    return await _run(request, ref, JobKind.SYNC, session, user.id, wait_s, options)


@router.post(
    "/{ref}/workflows/validate",
    response_model=Envelope[ValidateResult],
    responses={**_COMMON, 200: {"content": {"application/json": {"example": VALIDATE_EXAMPLE}}}},
)
async def validate_workflows(
    ref: PackRef,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    wait: WaitQuery = None,
) -> Response:
    """Load and validate the pack's workflow files without registering anything."""
    wait_s = settings.celery.result_wait_seconds if wait is None else wait
    return await _run(request, ref, JobKind.VALIDATE, session, user.id, wait_s)


class BulkSyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packs: list[PackRefStr] | None = Field(
        default=None,
        max_length=10_000,
        description="Pack refs to sync; all packs when omitted",
        examples=[["my_pack", "core"]],
    )


class BulkSyncAccepted(BaseModel):
    batch_id: uuid.UUID = Field(description="GET /api/v1/jobs/batches/{batch_id} reports overall progress")
    jobs: list[JobPublic]


@router.post(
    "/sync",
    status_code=202,
    response_model=Envelope[BulkSyncAccepted],
    responses=error_responses(404, 422),
)
def sync_all(session: SessionDep, user: CurrentUser, body: BulkSyncRequest | None = None) -> Envelope[BulkSyncAccepted]:
    """Start one sync job per pack (every pack, or the listed ones) and return at once."""
    from attune.packs import service as packs

    refs = body.packs if body and body.packs is not None else packs.all_refs(session)
    targets = [packs.get_pack(session, r, keep=True) for r in dict.fromkeys(refs)]  # 404 before anything starts
    batch_id = uuid.uuid4()
    started = []
    for pack in targets:
        job = jobs.create_job(session, pack, JobKind.SYNC, JobTrigger.BULK, user_id=user.id, batch_id=batch_id)
        started.append(job)
    session.commit()
    for job in started:
        if dispatch.enqueue_committed(session, job) is not None:
            session.refresh(job)  # marked failed: the broker is down
    return Envelope(
        data=BulkSyncAccepted(batch_id=batch_id, jobs=[JobPublic.of(j) for j in started]),
        message=f"Started {len(started)} sync jobs: follow them at /api/v1/jobs/batches/{batch_id}",
    )
