"""API keys: a secret for pipelines, with a role and optionally a list of packs.

The secret (``atk_<id>_<secret>``) is shown once, when the key is made; only the
sha256 of its random part is stored (32 random bytes: a fast hash is enough, nothing
to brute-force)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from attune.db.types import JSONType, TZDateTime, utcnow


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    # public: it is in the key itself and in GET /api/v1/keys, DELETE /api/v1/keys/{id}
    id: str = Field(sa_column=Column(String(16), primary_key=True))
    name: str = Field(sa_column=Column(String(64), nullable=False))
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    role: str = Field(sa_column=Column(String(16), nullable=False))
    # the packs it may act on; None: every pack
    packs: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(TZDateTime, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(TZDateTime, nullable=True))
    last_used_from: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
