"""Manual sync and validate of a pack's workflows: start a job, wait for the worker."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from attune.access.principal import Principal
from attune.access.roles import Role
from attune.jobs import bulk, pipeline
from attune.jobs.models import JobKind
from attune.jobs.schemas import Accepted, BulkSyncAccepted, BulkSyncRequest, JobPublic
from attune.sync.schemas import (
    PLANNED_MESSAGE,
    SYNC_EXAMPLE,
    SYNCED_MESSAGE,
    VALIDATE_EXAMPLE,
    VALIDATED_MESSAGE,
    PlanResult,
    SyncResult,
    ValidateResult,
    envelope_json,
)
from attune_api.access import Editor, PackScope, allow
from attune_api.deps import PackRef, SettingsDep, write
from attune_api.schemas import Envelope, error_responses

router = APIRouter(prefix="/api/v1/packs", tags=["pack workflows"], responses=error_responses(401, 403, 503))

_MESSAGES = {
    JobKind.SYNC: SYNCED_MESSAGE,
    JobKind.VALIDATE: VALIDATED_MESSAGE,
    JobKind.PLAN: PLANNED_MESSAGE,
    JobKind.PUSH: "Pack version processed: see outcome (activated, validated or refused)",
}
_VERBS = {JobKind.SYNC: "sync", JobKind.VALIDATE: "validate", JobKind.PLAN: "plan the sync of",
          JobKind.PUSH: "validate and activate"}  # fmt: skip


async def _start_and_wait(request: Request, ref: str, kind: JobKind, wait_s: float, **start: Any) -> Response:
    job_id = await run_in_threadpool(functools.partial(pipeline.start, ref, kind=kind, **start))
    return await answer_when_done(request, ref, job_id, wait_s, kind)


async def answer_when_done(request: Request, ref: str, job_id: uuid.UUID, wait_s: float, kind: JobKind) -> Response:
    """The job's result when it finishes within ``wait_s`` seconds, else 202 with the job to poll."""
    found = await pipeline.wait(job_id, wait_s, getattr(request.app.state, "redis", None))
    pipeline.raise_if_failed(found, pack_ref=ref, job_id=job_id, verb=_VERBS[kind])  # before any result it kept
    if found.finished and found.result_json is not None:
        # the worker stored the result (with its job_id) as JSON: sent as is, never decoded here
        return Response(envelope_json(found.result_json, _MESSAGES[kind]), media_type="application/json")
    accepted = Accepted.of(job_id, found.status)
    body = {
        "data": accepted.model_dump(mode="json"),
        "message": f"The {_VERBS[kind]} is still running: poll {accepted.location}",
    }
    return JSONResponse(body, status_code=202, headers={"Location": accepted.location})


WaitQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=3600,
        allow_inf_nan=False,
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
    500: {"description": "The job failed (its error says why; the worker's log has the details)"},
}


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What the sync endpoint's query asks for: the job kind (sync, or its plan) and options."""

    kind: JobKind
    options: dict[str, Any] | None


def sync_request(
    full: Annotated[
        bool, Query(description="Read and check every file, even those unchanged since the last sync")
    ] = False,
    dry_run: Annotated[
        bool,
        Query(
            description="The plan instead of the sync: per workflow and action create, update, unchanged, "
            "remove or error (updates with a structural summary and a unified diff); writes nothing"
        ),
    ] = False,
) -> SyncRequest:
    return SyncRequest(JobKind.PLAN if dry_run else JobKind.SYNC, {"full": True} if full else None)


@router.post(
    "/{ref}/workflows/sync",
    response_model=Envelope[SyncResult | PlanResult],
    responses={
        **_COMMON,
        200: {"content": {"application/json": {"example": {"data": SYNC_EXAMPLE, "message": _MESSAGES[JobKind.SYNC]}}}},
    },
)
async def sync_workflows(
    ref: PackRef,
    request: Request,
    by: Editor,
    settings: SettingsDep,
    asked: Annotated[SyncRequest, Depends(sync_request)],
    wait: WaitQuery = None,
) -> Response:
    """Load, validate and register the pack's workflow files; waits for the worker's result.

    Invalid workflows are listed in `errors` and never block the valid ones.
    Unchanged files (same inode, size and modification time, calls resolving as
    before) are not read again (`unchanged_count`). Workflows whose file was
    removed are deleted (listed in `removed`). With `dry_run=true`, a plan job runs the
    same sync and rolls it back: the answer is its plan (`PlanResult`)."""
    wait_s = settings.celery.result_wait_seconds if wait is None else wait
    return await _start_and_wait(request, ref, asked.kind, wait_s, by=by, options=asked.options)


@router.post(
    "/{ref}/workflows/validate",
    response_model=Envelope[ValidateResult],
    responses={
        **_COMMON,
        200: {
            "content": {
                "application/json": {"example": {"data": VALIDATE_EXAMPLE, "message": _MESSAGES[JobKind.VALIDATE]}}
            }
        },
    },
)
async def validate_workflows(
    ref: PackRef,
    request: Request,
    by: Editor,
    settings: SettingsDep,
    wait: WaitQuery = None,
) -> Response:
    """Load and validate the pack's workflow files without registering anything."""
    wait_s = settings.celery.result_wait_seconds if wait is None else wait
    return await _start_and_wait(request, ref, JobKind.VALIDATE, wait_s, by=by)


@router.post(
    "/sync",
    status_code=202,
    response_model=Envelope[BulkSyncAccepted],
    responses=error_responses(404, 422),
)
async def sync_all(
    by: Annotated[Principal, Depends(allow(Role.EDITOR, PackScope.HANDLER))], body: BulkSyncRequest | None = None
) -> Envelope[BulkSyncAccepted]:
    """Start one sync job per pack (every pack, or the listed ones) and return at once. A key
    limited to packs must list its packs (only). With no pack registered, the batch starts
    no job and its summary says it is finished."""
    if body is None or body.packs is None:
        by.require_every_pack("sync every pack: list yours in `packs`")
    else:
        for ref in body.packs:
            by.require_pack(ref)

    def start(session: Session) -> Envelope[BulkSyncAccepted]:
        batch_id, started = bulk.start_batch(session, body.packs if body else None, by=by)
        return Envelope(
            data=BulkSyncAccepted(batch_id=batch_id, jobs=[JobPublic.of(j) for j in started]),
            message=f"Started {len(started)} sync jobs: follow them at /api/v1/jobs/batches/{batch_id}"
            if started
            else f"No pack is registered: batch {batch_id} started no job (it is finished)",
        )

    return await write(start)
