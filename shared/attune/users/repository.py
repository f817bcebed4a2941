from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from attune.users.models import User


def get_by_login(session: Session, login: str) -> User | None:
    return session.exec(select(User).where(User.login == login)).first()


LOGIN_LOCK_NAMESPACE = 0x4155  # apart from the packs' advisory locks (sync/store.py: 0x4154)
_LOGIN_LOCK = text("SELECT pg_advisory_xact_lock(:ns, hashtext(lower(:login)))")


def login_like(session: Session, login: str) -> str | None:
    """The stored login equal to ``login`` whatever the case, if any (logins are ASCII). On
    Postgres, creations of logins equal but for case wait for each other from here until
    their transaction ends (SQLite: one writer at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOGIN_LOCK, {"ns": LOGIN_LOCK_NAMESPACE, "login": login})
    found = session.exec(select(User.login).where(func.lower(User.login) == login.lower())).all()
    return login if login in found else min(found, default=None)  # (pairs made before: the exact one)


def get(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def add(session: Session, user: User) -> User:
    session.add(user)
    session.flush()
    return user


def list_all(session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(col(User.login))).all()


def lock_active_admins(session: Session) -> list[int]:
    """The ids of the active admins, their rows locked until the transaction ends: of two
    requests demoting the last two admins at once, the second sees the first's change
    (SQLite: its write transactions run one at a time already)."""
    stmt = select(User.id).where(col(User.role) == "admin", col(User.is_active).is_(True)).with_for_update()
    return [i for i in session.exec(stmt).all() if i is not None]
