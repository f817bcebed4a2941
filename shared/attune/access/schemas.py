"""Request and response models of API keys and of user management."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from attune.access.roles import Role
from attune.packs.schemas import PackRefStr

KEY_EXAMPLE = "atk_3f2a9c1e5b7d0a4c_q7K4yJw0cXn1vQ8rT2mZsE5uHbL9gD3pF6aN0iR4kWo"


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "ci-deploy", "role": "editor", "packs": ["my_pack"]}]},
    )

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["ci-deploy"])
    role: Role = Field(description="viewer, editor or admin: never above your own role")
    packs: list[PackRefStr] | None = Field(
        default=None, min_length=1, max_length=100, description="Only these packs (403 on others); default every pack"
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="Default: never expires")


class KeyPublic(BaseModel):
    """A key as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["3f2a9c1e5b7d0a4c"])
    name: str
    role: Role
    packs: list[str] | None = Field(description="The packs it is limited to; null: every pack")
    owner: str = Field(description="Login of the user who made it (the key never acts above that user's role)")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_from: str | None = Field(description="Client address of its last use")


class KeyCreated(KeyPublic):
    secret: str = Field(
        examples=[KEY_EXAMPLE],
        description="Send as `Authorization: Bearer <secret>`. Shown this once: only a hash is kept",
    )


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"login": "bob", "password": "correct horse battery", "role": "viewer"}]},
    )

    login: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    role: Role


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "editor"}]})

    role: Role | None = None
    active: bool | None = Field(default=None, description="false: logins, tokens and keys stop at once")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    login: str
    role: Role
    active: bool
    created_at: datetime
