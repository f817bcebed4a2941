from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from attune.auth import service as sessions
from attune.auth import throttle
from attune.auth.schemas import LoggedOut, LoginRequest, LogoutRequest, RefreshRequest, Tokens
from attune.errors import Unauthorized
from attune.users import service as users
from attune_api.deps import SessionDep, SettingsDep
from attune_api.schemas import Envelope, error_responses

router = APIRouter(prefix="/auth", tags=["auth"])
_bearer = HTTPBearer(auto_error=False, description="Access token from POST /auth/login")


@router.post("/login", response_model=Envelope[Tokens], responses=error_responses(401, 422, 429, 503))
def login(body: LoginRequest, request: Request, session: SessionDep, settings: SettingsDep) -> Envelope[Tokens]:
    """Exchange a login and password for an access token and a refresh token.

    Every attempt for one login from one address is counted before the password is
    checked; past the limit they are refused with 429 for a while."""
    address = request.client.host if request.client else "unknown"
    throttle.attempt(settings, body.login, address)
    user = users.authenticate(session, body.login, body.password)
    throttle.reset(settings, body.login, address)
    assert user.id is not None
    pair = sessions.start_session(session, settings.auth, user.id)
    session.commit()
    return Envelope(data=Tokens(**pair.__dict__), message="Logged in")


@router.post("/refresh", response_model=Envelope[Tokens], responses=error_responses(401, 422, 503))
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> Envelope[Tokens]:
    """Exchange a refresh token for a new access token and a new refresh token.

    Each refresh token is good once. Presenting one that was already exchanged revokes
    every token of its session (401): log in again."""
    try:
        user_id, pair = sessions.rotate(session, settings.auth, body.refresh_token)
    except (sessions.RefreshTokenReused, sessions.SessionRevoked):
        session.commit()  # the revocation stands, although the answer is 401
        raise
    users.active_user(session, user_id)
    session.commit()
    return Envelope(data=Tokens(**pair.__dict__), message="Token refreshed")


@router.post("/logout", response_model=Envelope[LoggedOut], responses=error_responses(401, 422, 503))
def logout(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    body: LogoutRequest | None = None,
) -> Envelope[LoggedOut]:
    """Revoke the caller's refresh token and the rest of its session: the refresh token
    in the body, or the session of the access token sent as `Authorization: Bearer`.
    The session's access tokens stop working too (401 `Session ended`), before they expire."""
    revoked = False
    if body is not None and body.refresh_token is not None:
        revoked = sessions.end_session(session, settings.auth, body.refresh_token, "refresh")
    elif credentials is not None:
        revoked = sessions.end_session(session, settings.auth, credentials.credentials, "access")
    else:
        raise Unauthorized("Nothing to log out: send the refresh token in the body, or an access token as Bearer")
    session.commit()
    return Envelope(data=LoggedOut(revoked=revoked), message="Logged out")
