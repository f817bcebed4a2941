from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import inspect

from attune.jobs.models import Job
from attune.packs.schemas import PackRefStr


class JobProgress(BaseModel):
    done: int
    total: int | None


class JobPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "5294e9f9-694b-4c06-b5dd-3bca977f74f4", "kind": "sync", "trigger": "manual",
                    "status": "running", "pack_ref": "my_pack", "options": {},
                    "progress": {"done": 4000, "total": 10000}, "result": None, "error": None, "attempts": 1,
                    "chunks_total": 10, "batch_id": None, "started_by": "alice",
                    "created_at": "2026-11-28T09:00:00Z", "started_at": "2026-11-28T09:00:01Z", "finished_at": None,
                    "duration_seconds": None,
                }
            ]
        },
    )  # fmt: skip

    id: uuid.UUID
    kind: str = Field(description="sync, validate or plan (a sync's dry run)")
    trigger: str = Field(description="manual, auto (pack create/update) or bulk (POST /packs/sync)")
    status: str = Field(description="queued, running, succeeded or failed")
    pack_ref: str
    options: dict[str, Any]
    progress: JobProgress
    result: dict[str, Any] | None = Field(
        description="The job's result (GET /api/v1/jobs/{id}); null in listings, which show the summary"
    )
    summary: dict[str, Any] | None = Field(
        default=None, description="The result's counts (loaded, registered, errors, ...) once the job succeeded"
    )
    error: str | None
    attempts: int
    chunks_total: int | None = Field(description="Chunks a large pack's sync was split into (null: one task)")
    batch_id: uuid.UUID | None = Field(description="Shared by the jobs one POST /packs/sync started")
    started_by: str | None = Field(default=None, description="Who started it: a login, or an API key as "
                                   "`key:<name>#<id>` (auto-syncs: who created or updated the pack)")  # fmt: skip
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None

    @classmethod
    def listed(cls, job: Any) -> JobPublic:
        """As a listing shows it: the summary, not the result."""
        return cls.of(job).model_copy(update={"result": None})

    @classmethod
    def of(cls, job: Any) -> JobPublic:
        duration = None
        if job.started_at and job.finished_at:
            duration = round((job.finished_at - job.started_at).total_seconds(), 3)
        return cls(
            id=job.id,
            kind=job.kind,
            trigger=job.trigger,
            status=job.status,
            pack_ref=job.pack_ref,
            options=job.options,
            progress=JobProgress(done=job.progress_done, total=job.progress_total),
            result=job.result if not isinstance(job, Job) or "result" not in inspect(job).unloaded else None,
            summary=job.summary,
            error=job.error,
            attempts=job.attempts,
            chunks_total=job.chunks_total,
            batch_id=job.batch_id,
            started_by=job.started_by,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_seconds=duration,
        )


class Accepted(BaseModel):
    """A job still running when the request stopped waiting: poll ``location``."""

    job_id: uuid.UUID
    status: str
    location: str

    @classmethod
    def of(cls, job_id: uuid.UUID, status: str) -> Accepted:
        return cls(job_id=job_id, status=status, location=f"/api/v1/jobs/{job_id}")


def _some_packs(refs: list[str] | None) -> list[str] | None:
    # an empty list started a batch of no jobs, whose id then answered 404
    if refs is not None and not refs:
        raise ValueError("list at least one pack ref, or leave `packs` out to sync every pack")
    return refs


class BulkSyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packs: Annotated[list[PackRefStr] | None, AfterValidator(_some_packs)] = Field(
        default=None,
        max_length=10_000,
        description="Pack refs to sync (at least one); all packs when omitted",
        examples=[["my_pack", "core"]],
    )


class BulkSyncAccepted(BaseModel):
    batch_id: uuid.UUID = Field(description="GET /api/v1/jobs/batches/{batch_id} reports overall progress")
    jobs: list[JobPublic]


class BatchSummary(BaseModel):
    batch_id: uuid.UUID
    jobs_total: int
    jobs: dict[str, int] = Field(description="Jobs by status: queued, running, succeeded, failed")
    finished: bool
    files_done: int
    files_total: int | None = Field(
        description="Known once every job has listed its files or ended (a job that failed before listing "
        "them counts the files it did)"
    )
    job_ids: list[uuid.UUID]
