"""Staging for chunked syncs: what each chunk found, until one step registers it all."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, SmallInteger, String, Uuid
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType

STATUS_UNCHANGED, STATUS_OK, STATUS_ERROR = 0, 1, 2


class SyncStaging(SQLModel, table=True):
    """One row per workflow file of a running sync job (unlogged on Postgres: a crash
    loses only work that the redelivered job does again)."""

    __tablename__ = "sync_staging"

    job_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True))
    # a file's place in the sorted listing (two files may claim one ref: a.yaml, a.yml)
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    ref: str = Field(sa_column=Column(String(255), nullable=False))
    chunk: int = Field(sa_column=Column(Integer, nullable=False))
    status: int = Field(sa_column=Column(SmallInteger, nullable=False))
    name: str = Field(max_length=255)
    source_file: str = Field(max_length=1024)
    content_hash: str = Field(max_length=64)
    deps: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    label: str | None = Field(default=None, max_length=255)
    description: str | None = None
    version: str | None = Field(default=None, max_length=50)
    param_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    out_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    definition: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    tags: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    # warnings of a registered workflow, every diagnostic of a failed one
    diagnostics: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))


class SyncChunk(SQLModel, table=True):
    """A chunk of a job that finished staging (the fan-in counter)."""

    __tablename__ = "sync_chunks"

    job_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True))
    chunk: int = Field(sa_column=Column(Integer, primary_key=True))
    files: int = 0
