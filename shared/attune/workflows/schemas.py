"""What the API shows of a registered workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WorkflowSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ref: str
    pack_ref: str
    name: str
    label: str
    description: str | None
    version: str
    tags: list[str]
    source_file: str
    content_hash: str
    revision: int | None = Field(default=None, description="Its current revision: GET .../{ref}/revisions/{revision}")
    created_at: datetime
    updated_at: datetime


class WorkflowDetail(WorkflowSummary):
    param_schema: dict[str, Any] | None
    out_schema: dict[str, Any] | None
    definition: dict[str, Any]
    warnings: list[dict[str, Any]]
