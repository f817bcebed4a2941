from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Uuid
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow


class JobKind(enum.StrEnum):
    SYNC = "sync"
    VALIDATE = "validate"
    PLAN = "plan"  # a sync's dry run: what it would do, nothing written
    PUSH = "push"  # a pushed version: its plan, then (unless refused) the sync from it


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value)  # a job in either ends there


class JobTrigger(enum.StrEnum):
    MANUAL = "manual"  # an explicit sync/validate request
    AUTO = "auto"  # pack create/update
    BULK = "bulk"  # POST /packs/sync


class Job(SQLModel, table=True):
    """One sync or validate run of a pack, whatever started it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_pack_ref_created_at", "pack_ref", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    trigger: str = Field(sa_column=Column(String(16), nullable=False))
    status: str = Field(default=JobStatus.QUEUED, sa_column=Column(String(16), nullable=False, index=True))
    pack_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("packs.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    pack_ref: str = Field(max_length=100, index=True)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    progress_done: int = 0
    progress_total: int | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    # the result's counts: what job listings show (a result can be megabytes)
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    error: str | None = None
    attempts: int = 0
    # chunked syncs: how many chunks the files were split into (None: one task)
    chunks_total: int | None = None
    # jobs started together by POST /packs/sync share a batch id
    batch_id: uuid.UUID | None = Field(default=None, index=True)
    created_by: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    )
    # the login of the user who started it (kept as it was: an audit record)
    started_by: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))


class JobBatch(SQLModel, table=True):
    """A POST /api/v1/packs/sync: its jobs carry its id. The row is what lets a batch that
    started no job (no pack registered yet) answer as an empty, finished batch rather
    than as an unknown id; the progress of a batch is read from its jobs."""

    __tablename__ = "job_batches"

    id: uuid.UUID = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))


class JobLease(SQLModel, table=True):
    """A task of a job that is due or running: who holds it, until when, and how to send it
    again. A worker renews its leases while it works; a lease that expires (its worker's
    host died) is taken back and its task sent again (jobs/leases.py)."""

    __tablename__ = "job_leases"

    job_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True))
    task: str = Field(sa_column=Column(String(32), primary_key=True))  # run, chunk:<n>, finish
    task_name: str = Field(max_length=64)
    args: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    owner: str | None = Field(default=None, max_length=200)  # host:pid:nonce of the worker process
    expires_at: datetime = Field(sa_column=Column(TZDateTime, nullable=False, index=True))
