from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow


class Action(SQLModel, table=True):
    """An action a pack defines in ``actions/*.yaml``; workflows reference it by ref."""

    __tablename__ = "actions"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=255, unique=True, index=True)
    pack_id: int = Field(
        sa_column=Column(Integer, ForeignKey("packs.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    label: str | None = Field(default=None, max_length=255)
    description: str | None = None
    runner_type: str | None = Field(default=None, max_length=100)
    entry_point: str | None = Field(default=None, max_length=1024)
    parameters: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    source_file: str = Field(max_length=1024)
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
