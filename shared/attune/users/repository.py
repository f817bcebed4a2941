from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from attune.users.models import User


def get_by_login(session: Session, login: str) -> User | None:
    return session.exec(select(User).where(User.login == login)).first()


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


def count_active_admins(session: Session) -> int:
    stmt = select(func.count()).select_from(User).where(col(User.role) == "admin", col(User.is_active).is_(True))
    return session.exec(stmt).one()
