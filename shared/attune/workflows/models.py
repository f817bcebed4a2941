from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow


class WorkflowDefinition(SQLModel, table=True):
    __tablename__ = "workflow_definitions"
    __table_args__ = (
        Index(
            "ix_workflow_definitions_tags",
            "tags",
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=255, unique=True, index=True)
    pack_id: int = Field(
        sa_column=Column(Integer, ForeignKey("packs.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    name: str = Field(max_length=255)
    label: str = Field(max_length=255)
    description: str | None = None
    version: str = Field(max_length=50)
    param_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    out_schema: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    definition: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    warnings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    source_file: str = Field(max_length=1024)
    content_hash: str = Field(max_length=64)
    # the number of its current revision (GET /api/v1/workflows/{ref}/revisions/{revision})
    revision: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
