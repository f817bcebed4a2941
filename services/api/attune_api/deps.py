"""Named dependencies, defined once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from attune.auth.security import decode_token
from attune.config import Settings, get_settings
from attune.db.engine import get_engine, read_only
from attune.errors import Unauthorized
from attune.packs.models import PACK_REF_MAX, PACK_REF_PATTERN
from attune.users import service as users
from attune.users.models import User


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Routers that write commit explicitly before answering;
    anything not committed is rolled back here. GET requests only read."""
    engine = read_only(get_engine()) if request.method in ("GET", "HEAD") else get_engine()
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /auth/login")


def current_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        if request.headers.get("authorization"):
            raise Unauthorized("Malformed Authorization header: expected 'Bearer <token>'")
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'")
    user_id = decode_token(settings.auth, credentials.credentials, "access")
    user = users.active_user(session, user_id)
    # End the read here: the handler runs later, in another thread or after an await, and no
    # transaction (on SQLite: no write lock) is held while the request waits for either.
    session.commit()
    return user


CurrentUser = Annotated[User, Depends(current_user)]

PackRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=PACK_REF_MAX,
        pattern=PACK_REF_PATTERN,
        description="Pack reference: a lowercase letter, then lowercase letters, digits, '_' or '-'",
        examples=["my_pack"],
    ),
]
