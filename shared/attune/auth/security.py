"""Password hashing (argon2) and JWT access/refresh tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from attune.config import AuthSettings
from attune.errors import Unauthorized

_hasher = PasswordHasher()
# Verified against when the login is unknown, so both paths cost one argon2 verify.
_DUMMY_HASH = _hasher.hash("attune-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class IssuedTokens:
    """A pair and what the database keeps of its refresh token (see auth.models)."""

    pair: TokenPair
    refresh_id: str
    refresh_expires_at: int


def _encode(settings: AuthSettings, sub: str, kind: str, ttl: int, **claims: Any) -> tuple[str, str, int]:
    now = int(time.time())
    jti = uuid.uuid4().hex
    payload = {"sub": sub, "type": kind, "iat": now, "exp": now + ttl, "jti": jti, **claims}
    return jwt.encode(payload, settings.jwt_secret, algorithm=settings.jwt_algorithm), jti, now + ttl


def issue_tokens(settings: AuthSettings, user_id: int, family_id: str) -> IssuedTokens:
    """An access token and a refresh token of the session (token family) ``family_id``;
    both carry it (claim ``sid``), so that logging out with either ends that session."""
    access, _, _ = _encode(settings, str(user_id), "access", settings.access_token_ttl_seconds, sid=family_id)
    refresh, jti, exp = _encode(settings, str(user_id), "refresh", settings.refresh_token_ttl_seconds, sid=family_id)
    pair = TokenPair(access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl_seconds)
    return IssuedTokens(pair=pair, refresh_id=jti, refresh_expires_at=exp)


def decode_token(settings: AuthSettings, token: str, expected_type: str) -> int:
    """Returns the user id of a valid token of the expected type, else raises Unauthorized."""
    return user_id_of(decode_claims(settings, token, expected_type))


def user_id_of(payload: dict[str, Any]) -> int:
    try:
        return int(payload["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized("Invalid token") from exc


def decode_claims(settings: AuthSettings, token: str, expected_type: str) -> dict[str, Any]:
    """The claims of a valid token of the expected type, else raises Unauthorized."""
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret,
            # One algorithm, never taken from the token header: rules out "alg: none".
            algorithms=[settings.jwt_algorithm],
            options={"require": ["exp", "iat", "sub", "type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("Invalid token") from exc
    if payload.get("type") != expected_type:
        article = "an" if expected_type[:1] in "aeiou" else "a"
        raise Unauthorized(f"Invalid token: not {article} {expected_type} token")
    return payload
