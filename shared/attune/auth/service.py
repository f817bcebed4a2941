"""Sessions: a login starts a token family, each refresh rotates its refresh token,
a used refresh token presented again revokes the family, logout revokes it.

Flushes only; the caller commits (also before answering 401 on a replayed token, so
that the family's revocation stands)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import Session

from attune.auth import repository
from attune.auth.models import RefreshToken
from attune.auth.security import IssuedTokens, TokenPair, decode_claims, issue_tokens, user_id_of
from attune.config import AuthSettings
from attune.db.types import utcnow
from attune.errors import Unauthorized


class RefreshTokenReused(Unauthorized):
    """A refresh token that was already exchanged: its family is now revoked. The caller
    must commit that before answering."""


class SessionRevoked(Unauthorized):
    """A refresh token of a session that was ended (its family has a revoked token, as after
    a logout that raced this token's issue): every token of the family is revoked now. The
    caller must commit that before answering."""


def _store(session: Session, issued: IssuedTokens, family_id: str, user_id: int) -> TokenPair:
    expires_at = datetime.fromtimestamp(issued.refresh_expires_at, UTC)
    row = RefreshToken(id=issued.refresh_id, family_id=family_id, user_id=user_id, expires_at=expires_at)
    repository.add(session, row)
    return issued.pair


def start_session(session: Session, settings: AuthSettings, user_id: int) -> TokenPair:
    """Tokens for a user who just logged in: a new family. Forgets the user's expired tokens."""
    repository.delete_expired(session, user_id, utcnow())
    family_id = uuid.uuid4().hex
    return _store(session, issue_tokens(settings, user_id, family_id), family_id, user_id)


def rotate(session: Session, settings: AuthSettings, refresh_token: str) -> tuple[int, TokenPair]:
    """Exchanges a refresh token, once, for the user id and the next pair of its family."""
    claims = decode_claims(settings, refresh_token, "refresh")
    user_id = user_id_of(claims)
    token_id = claims.get("jti")
    if not isinstance(token_id, str):
        raise Unauthorized("Invalid token")
    now = utcnow()
    if not repository.mark_used(session, token_id, now):
        row = repository.get(session, token_id)
        if row is None or row.user_id != user_id:
            raise Unauthorized("Invalid token: unknown refresh token, log in again")
        if row.revoked_at is not None or repository.family_revoked(session, row.family_id):
            repository.revoke_family(session, row.family_id, user_id, now)  # (a logout raced its exchange)
            raise SessionRevoked("Refresh token revoked: log in again")
        if row.used_at is not None:
            repository.revoke_family(session, row.family_id, user_id, now)
            raise RefreshTokenReused("Refresh token already used: the session it belongs to is revoked, log in again")
        raise Unauthorized("Token has expired")
    row = repository.get(session, token_id)
    assert row is not None
    return user_id, _store(session, issue_tokens(settings, user_id, row.family_id), row.family_id, user_id)


def end_session(session: Session, settings: AuthSettings, token: str, token_type: str) -> bool:
    """Revokes the family of a valid refresh or access token; False if it was already revoked."""
    claims = decode_claims(settings, token, token_type)
    family_id = claims.get("sid")
    if not isinstance(family_id, str):
        return False  # a token from before sessions were kept: nothing to revoke
    return repository.revoke_family(session, family_id, user_id_of(claims), utcnow()) > 0


def user_of_access_token(session: Session, settings: AuthSettings, token: str) -> int:
    """The user an access token stands for: Unauthorized when it is invalid, expired, or its
    session was ended (logout, a replayed refresh token) even though it has not expired yet."""
    claims = decode_claims(settings, token, "access")
    family_id = claims.get("sid")
    if isinstance(family_id, str) and repository.family_revoked(session, family_id):
        raise Unauthorized("Session ended (logged out or revoked): log in again")
    return user_id_of(claims)
