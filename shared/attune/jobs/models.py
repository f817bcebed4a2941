from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow


class JobKind(enum.StrEnum):
    SYNC = "sync"
    VALIDATE = "validate"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


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
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
