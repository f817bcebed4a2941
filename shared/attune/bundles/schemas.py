"""What the versions endpoints answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from attune.bundles.models import PackVersion


class VersionPublic(BaseModel):
    id: int
    pack_ref: str
    sha256: str = Field(description="sha256 of the archive as uploaded: identical uploads share it")
    size: int = Field(description="The archive's size in bytes")
    format: str = Field(description="tar.gz or zip")
    file_count: int
    unpacked_size: int
    manifest_version: str | None = Field(description="The version its pack.yaml gives")
    uploaded_by: str | None = Field(description="Login of the user who pushed it (first push of these bytes)")
    created_at: datetime
    state: str = Field(
        description="pending (its job has not decided), valid, refused (plan errors), errors (plan "
        "errors, activated anyway with allow_errors) or failed"
    )
    active: bool = Field(description="Whether the pack syncs from this version now")
    activated_at: datetime | None = Field(description="When it was last activated")
    job_id: uuid.UUID | None = Field(description="Its last job (push or activate): GET /api/v1/jobs/{job_id}")

    @classmethod
    def of(cls, v: PackVersion, active_id: int | None) -> VersionPublic:
        assert v.id is not None
        return cls(
            id=v.id, pack_ref=v.pack_ref, sha256=v.sha256, size=v.size, format=v.format, file_count=v.file_count,
            unpacked_size=v.unpacked_size, manifest_version=v.manifest_version, uploaded_by=v.uploaded_by,
            created_at=v.created_at, state=v.state, active=v.id == active_id, activated_at=v.activated_at,
            job_id=v.job_id,
        )  # fmt: skip


class FileEntry(BaseModel):
    path: str
    size: int


class VersionDetail(VersionPublic):
    manifest: dict[str, Any] = Field(description="Its pack.yaml")
    files: list[FileEntry] = Field(description="Every file, path in the pack and size")
    validation: dict[str, Any] | None = Field(
        description="Its plan against the registry when its job ran (PlanResult); null while pending"
    )

    @classmethod
    def detail(cls, v: PackVersion, active_id: int | None) -> VersionDetail:
        base = VersionPublic.of(v, active_id).model_dump()
        files = [FileEntry(path=p, size=s) for p, s in v.files]
        return cls(**base, manifest=v.manifest, files=files, validation=v.validation)


class VersionAccepted(BaseModel):
    version: VersionPublic
    job_id: uuid.UUID
    status: str
    location: str
