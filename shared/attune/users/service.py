from __future__ import annotations

import re

from sqlmodel import Session

from attune.auth.security import hash_password, verify_password
from attune.errors import BadRequest, Conflict, NotFound, Unauthorized
from attune.users import repository
from attune.users.models import User

LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
MIN_PASSWORD = 8
INVALID_CREDENTIALS = "Invalid login or password"


def create_user(session: Session, login: str, password: str) -> User:
    if not LOGIN_PATTERN.match(login):
        raise BadRequest("Login must be 1-128 characters: letters, digits, '_', '.', '@' or '-'")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"Password must be at least {MIN_PASSWORD} characters")
    if repository.get_by_login(session, login):
        raise Conflict(f"User '{login}' already exists")
    return repository.add(session, User(login=login, password_hash=hash_password(password)))


def set_password(session: Session, login: str, password: str) -> User:
    user = repository.get_by_login(session, login)
    if user is None:
        raise NotFound(f"User '{login}' not found")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"Password must be at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, login: str, password: str) -> User:
    """Same message and the same work (one argon2 verify) for unknown login and wrong password."""
    user = repository.get_by_login(session, login)
    ok = verify_password(password, user.password_hash if user else None)
    if not ok or user is None or not user.is_active:
        raise Unauthorized(INVALID_CREDENTIALS)
    return user


def active_user(session: Session, user_id: int) -> User:
    user = repository.get(session, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid token: user no longer exists")
    return user


def has_users(session: Session) -> bool:
    return repository.count(session) > 0
