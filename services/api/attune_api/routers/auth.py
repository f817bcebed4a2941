from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from attune.auth import throttle
from attune.auth.security import decode_token, issue_tokens
from attune.errors import Unauthorized
from attune.users import service as users
from attune_api.deps import SessionDep, SettingsDep
from attune_api.schemas import Envelope, error_responses

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"login": "admin", "password": "s3cret-pass"}]}
    )

    login: str = Field(min_length=1, max_length=128, examples=["admin"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(
        min_length=1, max_length=4096, examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"]
    )


class Tokens(BaseModel):
    access_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"])
    refresh_token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln"])
    expires_in: int = Field(description="Seconds until the access token expires")
    token_type: str = "Bearer"


@router.post("/login", response_model=Envelope[Tokens], responses=error_responses(401, 422, 429, 503))
def login(body: LoginRequest, request: Request, session: SessionDep, settings: SettingsDep) -> Envelope[Tokens]:
    """Exchange a login and password for an access token and a refresh token.

    Repeated failures for one login from one address are refused with 429 for a while."""
    address = request.client.host if request.client else "unknown"
    throttle.check(settings, body.login, address)
    try:
        user = users.authenticate(session, body.login, body.password)
    except Unauthorized:
        throttle.record_failure(settings, body.login, address)
        raise
    throttle.reset(settings, body.login, address)
    assert user.id is not None
    pair = issue_tokens(settings.auth, user.id)
    return Envelope(data=Tokens(**pair.__dict__), message="Logged in")


@router.post("/refresh", response_model=Envelope[Tokens], responses=error_responses(401, 422, 503))
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> Envelope[Tokens]:
    """Exchange a valid refresh token for a new access token (and a new refresh token)."""
    user_id = decode_token(settings.auth, body.refresh_token, "refresh")
    user = users.active_user(session, user_id)
    assert user.id is not None
    pair = issue_tokens(settings.auth, user.id)
    return Envelope(data=Tokens(**pair.__dict__), message="Token refreshed")
