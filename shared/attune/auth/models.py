"""Refresh tokens, one row each: every refresh token is good once.

A login starts a family (one session of one client). Each refresh marks its token used
and issues the next one of the same family; a used token presented again means two
parties hold the family (a stolen token, replayed), so the whole family is revoked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from attune.db.types import TZDateTime, utcnow


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    # the token's ``jti`` claim (the token itself is a signed JWT and is not stored)
    id: str = Field(sa_column=Column(String(32), primary_key=True))
    family_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(TZDateTime, nullable=False))
    # set when the token was exchanged for the next one
    used_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
    # set when its family was revoked (logout, or a used token presented again)
    revoked_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
