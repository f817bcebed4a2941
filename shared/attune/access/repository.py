"""All SQL about API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from attune.access.models import ApiKey
from attune.users.models import User

# The last use is written at most this often per key (and whenever the address changes):
# a busy pipeline does not turn every read into a write.
LAST_USED_PRECISION = timedelta(seconds=60)


def add(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


def get(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id, populate_existing=True)


def list_with_owners(
    session: Session, user_id: int | None, *, limit: int, offset: int
) -> tuple[Sequence[tuple[ApiKey, str]], int]:
    """A page of keys with their owner's login, newest first: one user's, or every key
    (None); and how many there are in all."""
    stmt = select(ApiKey, User.login).join(User, col(User.id) == col(ApiKey.user_id))
    counted = select(func.count()).select_from(ApiKey)
    if user_id is not None:
        stmt = stmt.where(col(ApiKey.user_id) == user_id)
        counted = counted.where(col(ApiKey.user_id) == user_id)
    rows = session.exec(stmt.order_by(col(ApiKey.created_at).desc(), col(ApiKey.id)).limit(limit).offset(offset)).all()
    return rows, session.exec(counted).one()  # type: ignore[return-value]


def live_count_locked(session: Session, user_id: int, now: datetime) -> int:
    """The user's keys neither revoked nor expired, its row locked until the transaction
    ends (two creations at once count one after the other; SQLite: one writer at a time)."""
    session.exec(select(User.id).where(col(User.id) == user_id).with_for_update()).first()
    live = (
        select(func.count())
        .select_from(ApiKey)
        .where(
            col(ApiKey.user_id) == user_id,
            col(ApiKey.revoked_at).is_(None),
            or_(col(ApiKey.expires_at).is_(None), col(ApiKey.expires_at) > now),
        )
    )
    return session.exec(live).one()


def revoke(session: Session, key_id: str, now: datetime) -> None:
    session.execute(
        update(ApiKey)
        .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def touch(session: Session, key_id: str, now: datetime, address: str) -> None:
    """Records a use (time and address), unless one from the same address is recent."""
    session.execute(
        update(ApiKey)
        .where(
            col(ApiKey.id) == key_id,
            or_(
                col(ApiKey.last_used_at).is_(None),
                col(ApiKey.last_used_at) < now - LAST_USED_PRECISION,
                col(ApiKey.last_used_from).is_(None),
                col(ApiKey.last_used_from) != address,
            ),
        )
        .values(last_used_at=now, last_used_from=address)
        .execution_options(synchronize_session=False)
    )
