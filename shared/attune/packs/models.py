from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow
from attune.refs import PACK_REF_MAX


class PackBase(SQLModel):
    label: str = Field(min_length=1, max_length=255)
    version: str = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=10_000)


class Pack(PackBase, table=True):
    __tablename__ = "packs"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=PACK_REF_MAX, unique=True, index=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    # the pushed version the pack is synced from (pack_versions.id); None: its directory
    # under packs_base_dir. No foreign key: a pack's versions point at it already.
    active_version_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
