"""Staging for chunked syncs: what each chunk found, until one step registers it all."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, SmallInteger, String, Text, Uuid
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType

# A staged file is one of: unchanged and valid (not read), checked valid, checked
# invalid, unchanged and invalid (not read), or refused by the loader (bad name,
# duplicate ref, too large, unreadable: decided from the listing, never cached).
STATUS_UNCHANGED, STATUS_OK, STATUS_ERROR, STATUS_UNCHANGED_ERROR, STATUS_FILE_ERROR = 0, 1, 2, 3, 4
ERROR_STATUSES = (STATUS_ERROR, STATUS_UNCHANGED_ERROR, STATUS_FILE_ERROR)


class SyncStaging(SQLModel, table=True):
    """One row per workflow file of a running sync job (unlogged on Postgres: a crash
    loses only work that the redelivered job does again)."""

    __tablename__ = "sync_staging"
    __table_args__ = (Index("ix_sync_staging_job_ref", "job_id", "ref"),)

    job_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True))
    # a file's place in the sorted listing (two files may claim one ref: a.yaml, a.yml)
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    ref: str = Field(sa_column=Column(String(255), nullable=False))
    chunk: int = Field(sa_column=Column(Integer, nullable=False))
    status: int = Field(sa_column=Column(SmallInteger, nullable=False))
    name: str = Field(max_length=255)
    source_file: str = Field(max_length=1024)
    content_hash: str = Field(max_length=64)
    stat: str = Field(default="", sa_column=Column(String(100), nullable=False, server_default=""))
    # sha256 of the normalised definition's canonical JSON (valid workflows): revisions compare it
    definition_hash: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    deps: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    unresolved: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
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


class PackFile(SQLModel, table=True):
    """The last check of each workflow file of a pack, valid or not: a file whose
    stat key is the same, and whose calls resolve as they did, is not read again."""

    __tablename__ = "pack_files"

    pack_id: int = Field(sa_column=Column(Integer, ForeignKey("packs.id", ondelete="CASCADE"), primary_key=True))
    source_file: str = Field(sa_column=Column(String(1024), primary_key=True))
    ref: str = Field(max_length=255)
    stat: str = Field(max_length=100)
    content_hash: str = Field(max_length=64)
    status: int = Field(sa_column=Column(SmallInteger, nullable=False))
    deps: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    unresolved: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    diagnostics: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))


class PackSyncState(SQLModel, table=True):
    """What a small pack's last sync left (issue 15): the fingerprint of its folders (every
    entry's name, mode, inode, size and times), the calls outside the pack that its files
    make and whether each resolved, and the result an unchanged re-sync reports. A sync that
    finds the same fingerprint and the same resolutions answers that result without reading
    the cache row by row (see sync/fingerprint.py)."""

    __tablename__ = "pack_sync_state"

    pack_id: int = Field(sa_column=Column(Integer, ForeignKey("packs.id", ondelete="CASCADE"), primary_key=True))
    fingerprint: str = Field(max_length=64)
    externals: str = Field(sa_column=Column(Text, nullable=False))  # JSON: [[ref, resolved], ...]
    # JSONB on Postgres (read and copied without parsing), text on SQLite; written as JSON text
    result: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))  # the SyncResult, without job_id
    summary: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))  # its counts (a job's summary)
