"""Revisions: every change of a workflow's stored definition, kept immutable."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow

CHANGE_CREATE, CHANGE_UPDATE, CHANGE_REMOVE = "create", "update", "remove"


class WorkflowRevision(SQLModel, table=True):
    """One revision of a workflow: its normalised definition as a sync stored it (or a
    tombstone, ``change`` = remove, when the workflow was removed). Numbered 1, 2, ... per
    ref; a workflow that comes back after a removal continues its numbering. Keyed by ref,
    not by pack: the history of a deleted pack stays readable until the retention sweep."""

    __tablename__ = "workflow_revisions"
    __table_args__ = (
        UniqueConstraint("ref", "number", name="uq_workflow_revisions_ref_number"),
        Index("ix_workflow_revisions_pack_ref_created_at", "pack_ref", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(sa_column=Column(String(255), nullable=False))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    pack_ref: str = Field(sa_column=Column(String(100), nullable=False))
    change: str = Field(sa_column=Column(String(16), nullable=False))  # create, update or remove
    # sha256 of the definition's canonical JSON (sorted keys): what "changed" compares
    definition_hash: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    definition: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    source_file: str | None = Field(default=None, sa_column=Column(String(1024), nullable=True))
    file_sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    job_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(Uuid, ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True),
    )
    # who started the job (a login, or ``key:<name>#<id>``), "auto" for an auto-sync
    author: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
