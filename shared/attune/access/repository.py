"""All SQL about API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, update
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


def list_with_owners(session: Session, user_id: int | None) -> Sequence[tuple[ApiKey, str]]:
    """Keys with their owner's login, newest first: one user's, or every key (None)."""
    stmt = select(ApiKey, User.login).join(User, col(User.id) == col(ApiKey.user_id))
    if user_id is not None:
        stmt = stmt.where(col(ApiKey.user_id) == user_id)
    return session.exec(stmt.order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))).all()  # type: ignore[return-value]


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
