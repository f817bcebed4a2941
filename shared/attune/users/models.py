from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from attune.db.types import TZDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=128, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    # viewer, editor or admin (attune.access.roles); users from before roles are admins
    role: str = Field(default="admin", sa_column=Column(String(16), nullable=False, server_default="admin"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
