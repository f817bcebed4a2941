from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from attune.access.roles import Role
from attune.auth.security import hash_password, verify_password
from attune.errors import BadRequest, Conflict, NotFound, Unauthorized
from attune.users import repository
from attune.users.models import User

LOGIN_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
MIN_PASSWORD = 8
INVALID_CREDENTIALS = "Invalid login or password"


def create_user(session: Session, login: str, password: str, role: Role = Role.ADMIN) -> User:
    """A user with ``role``; admin unless told (``attune user create`` has always given every right)."""
    if not LOGIN_PATTERN.match(login):
        raise BadRequest("Login must be 1-128 characters: letters, digits, '_', '.', '@' or '-'")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"Password must be at least {MIN_PASSWORD} characters")
    taken = repository.login_like(session, login)
    if taken == login:
        raise Conflict(f"User '{login}' already exists")
    if taken is not None:  # two logins equal but for case: one person twice, and one login throttle
        raise Conflict(f"Login '{login}' is taken: user '{taken}' differs only in case")
    user = User(login=login, password_hash=hash_password(password), role=Role(role).value)
    try:
        with session.begin_nested():
            return repository.add(session, user)
    except IntegrityError as exc:  # a concurrent create of the same login won the race
        raise Conflict(f"User '{login}' already exists") from exc


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
        raise Unauthorized("Invalid token: its user no longer exists or is deactivated")
    return user


def has_users(session: Session) -> bool:
    return repository.count(session) > 0


def get_user(session: Session, login: str) -> User:
    user = repository.get_by_login(session, login)
    if user is None:
        raise NotFound(f"User '{login}' not found")
    return user


def get_user_by_id(session: Session, user_id: int) -> User:
    user = repository.get(session, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


def list_users(session: Session) -> Sequence[User]:
    return repository.list_all(session)


def update_user(session: Session, login: str, *, role: Role | None, active: bool | None) -> User:
    """Sets a user's role and/or whether it is active; both take effect on its next request
    (tokens and keys are checked against the user each time)."""
    demoted = (role is not None and role != Role.ADMIN) or active is False
    admins = repository.lock_active_admins(session) if demoted else []  # before the user is read
    user = get_user(session, login)
    if demoted and user.id in admins and len(admins) <= 1:
        raise Conflict(f"'{login}' is the last active admin: make another admin first")
    if role is not None:
        user.role = Role(role).value
    if active is not None:
        user.is_active = active
    session.add(user)
    session.flush()
    return user
