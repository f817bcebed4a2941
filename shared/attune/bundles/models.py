"""Pushed pack versions: archives stored by sha256 (chunks in the database, so that any
worker on any host can fetch them) and one row per version of a pack."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow


class VersionState:
    PENDING = "pending"  # stored; its job has not decided yet
    VALID = "valid"  # its plan has no errors (active or not)
    REFUSED = "refused"  # its plan has errors: not activated
    ERRORS = "errors"  # its plan has errors, and it was activated anyway (allow_errors)
    FAILED = "failed"  # its job failed (the job's error says why)


class PackBlob(SQLModel, table=True):
    """One archive's bytes, stored once whatever packs or versions point at it."""

    __tablename__ = "pack_blobs"

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    chunk_count: int
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))


class PackBlobChunk(SQLModel, table=True):
    __tablename__ = "pack_blob_chunks"

    sha256: str = Field(
        sa_column=Column(String(64), ForeignKey("pack_blobs.sha256", ondelete="CASCADE"), primary_key=True)
    )
    seq: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class PackVersion(SQLModel, table=True):
    """A version of a pack pushed as an archive: what it holds, who pushed it, what its plan said."""

    __tablename__ = "pack_versions"
    __table_args__ = (
        UniqueConstraint("pack_id", "sha256", name="uq_pack_versions_pack_id_sha256"),
        Index("ix_pack_versions_sha256", "sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pack_id: int = Field(sa_column=Column(Integer, ForeignKey("packs.id", ondelete="CASCADE"), nullable=False))
    pack_ref: str = Field(max_length=100)
    sha256: str = Field(sa_column=Column(String(64), ForeignKey("pack_blobs.sha256"), nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    format: str = Field(max_length=8)
    file_count: int
    unpacked_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    prefix: str = Field(default="", max_length=255)  # the top-level folder the pack sits in
    manifest_version: str | None = Field(default=None, max_length=50)
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    files: list[Any] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    # who pushed it, as jobs record who started them: the user's id and login (kept as it was)
    created_by: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    )
    uploaded_by: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    state: str = Field(default=VersionState.PENDING, max_length=16)
    validation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    job_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    activated_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
