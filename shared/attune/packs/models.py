from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow

# SPEC section 2: lowercase letter first, then lowercase letters, digits, _ or -.
PACK_REF_PATTERN = r"^[a-z][a-z0-9_-]*$"
PACK_REF_MAX = 100
PackRefStr = Annotated[str, StringConstraints(min_length=1, max_length=PACK_REF_MAX, pattern=PACK_REF_PATTERN)]


class PackBase(SQLModel):
    label: str = Field(min_length=1, max_length=255)
    version: str = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=10_000)


class PackCreate(PackBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ref": "my_pack",
                    "label": "My pack",
                    "version": "1.0.0",
                    "description": "Deployment workflows",
                    "tags": ["deploy"],
                    "meta": {"owner": "platform-team"},
                }
            ]
        },
    )

    ref: PackRefStr
    # optional here: what the request leaves out comes from the pack's own pack.yaml
    label: str | None = Field(default=None, min_length=1, max_length=255)  # type: ignore[assignment]
    version: str | None = Field(default=None, min_length=1, max_length=50)  # type: ignore[assignment]
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)


class PackUpdate(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid", json_schema_extra={"examples": [{"version": "1.1.0", "description": "Now with rollbacks"}]}
    )

    label: str | None = Field(default=None, min_length=1, max_length=255)
    version: str | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=10_000)
    tags: list[str] | None = None
    meta: dict[str, Any] | None = None


class Pack(PackBase, table=True):
    __tablename__ = "packs"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=PACK_REF_MAX, unique=True, index=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))


class PackPublic(PackBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "id": 1, "ref": "my_pack", "label": "My pack", "version": "1.0.0",
                    "description": "Deployment workflows", "tags": ["deploy"], "meta": {"owner": "platform-team"},
                    "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z",
                }
            ]
        }
    )  # fmt: skip
    id: int
    ref: str
    tags: list[str]
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
