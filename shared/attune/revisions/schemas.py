"""What the API shows of revisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from attune.revisions.content import StructuralSummary


class RevisionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ref: str
    number: int = Field(description="1, 2, ... per workflow ref; continues after a removal")
    pack_ref: str
    change: str = Field(description="create, update or remove (a tombstone: no definition)")
    definition_hash: str | None = Field(description="sha256 of the normalised definition's canonical JSON")
    source_file: str | None
    file_sha256: str | None = Field(description="sha256 of the source file's bytes")
    job_id: uuid.UUID | None = Field(description="The sync job that wrote it (null: a pack deletion, a migration)")
    author: str = Field(
        description="Who started the job: a login, or an API key as 'key:<name>#<id>'; 'auto' for an auto-sync"
    )
    created_at: datetime


class RevisionDetail(RevisionSummary):
    definition: dict[str, Any] | None = Field(description="The normalised definition (null for a removal)")


class RevisionDiff(BaseModel):
    ref: str
    number: int
    against: int | None = Field(description="The revision compared with (null: none, the workflow's first)")
    summary: StructuralSummary
    diff: str = Field(description="Unified diff of the normalised YAML, revision `against` -> revision `number`")
