"""All SQL about refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from attune.auth.models import RefreshToken


def add(session: Session, token: RefreshToken) -> None:
    session.add(token)
    session.flush()


def get(session: Session, token_id: str) -> RefreshToken | None:
    return session.get(RefreshToken, token_id, populate_existing=True)


def mark_used(session: Session, token_id: str, now: datetime) -> bool:
    """Marks the token used if it is still good; False if it was used, revoked, expired,
    is unknown, or its session (family) was ended. One conditional UPDATE: of two concurrent
    exchanges, one wins. The family is part of the condition: a logout that raced an earlier
    exchange revoked the family's rows it could see, not the token that exchange stored
    meanwhile; that token is then refused here."""
    other = aliased(RefreshToken)
    ended = exists().where(col(other.family_id) == col(RefreshToken.family_id), col(other.revoked_at).is_not(None))
    result = session.execute(
        update(RefreshToken)
        .where(
            col(RefreshToken.id) == token_id,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
            col(RefreshToken.expires_at) > now,
            ~ended,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def revoke_family(session: Session, family_id: str, user_id: int, now: datetime) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(
            col(RefreshToken.family_id) == family_id,
            col(RefreshToken.user_id) == user_id,
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_expired(session: Session, user_id: int, now: datetime) -> None:
    session.execute(
        delete(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.expires_at) <= now)
        .execution_options(synchronize_session=False)
    )


def family_revoked(session: Session, family_id: str) -> bool:
    """Whether the session (token family) was revoked: logout, or a replayed refresh token."""
    stmt = select(RefreshToken.id).where(
        col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_not(None)
    )
    return session.exec(stmt.limit(1)).first() is not None
