from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

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
