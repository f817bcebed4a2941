"""Request and response models of authentication (POST /auth/login, /refresh, /logout)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TOKEN_EXAMPLE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"login": "jdoe", "password": "s3cret-pass"}]}
    )

    login: str = Field(min_length=1, max_length=128, examples=["jdoe"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096, examples=[TOKEN_EXAMPLE])


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(
        default=None, min_length=1, max_length=4096, examples=[TOKEN_EXAMPLE],
        description="The refresh token to revoke (else the session of the access token sent as Bearer)",
    )  # fmt: skip


class Tokens(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"])
    refresh_token: str = Field(
        examples=[TOKEN_EXAMPLE], description="Good for one refresh: POST /auth/refresh returns the next one"
    )
    expires_in: int = Field(description="Seconds until the access token expires")
    token_type: str = "Bearer"


class LoggedOut(BaseModel):
    revoked: bool = Field(description="False if the session was already revoked")
