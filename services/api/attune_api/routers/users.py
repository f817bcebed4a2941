"""Admins manage users: list, create, change a role or deactivate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlmodel import Session

from attune.access.schemas import UserCreate, UserPublic, UserUpdate
from attune.users import service as users
from attune.users.models import User
from attune.users.service import LOGIN_PATTERN
from attune_api.access import Admin
from attune_api.deps import read, write
from attune_api.schemas import Envelope, error_responses

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=error_responses(401, 403, 422, 503))

Login = Annotated[str, Path(max_length=128, pattern=LOGIN_PATTERN.pattern, examples=["bob"])]


def _public(user: User) -> UserPublic:
    return UserPublic.model_validate({**user.model_dump(), "active": user.is_active})


@router.get("", response_model=Envelope[list[UserPublic]])
async def list_users(by: Admin) -> Envelope[list[UserPublic]]:
    """Every user, by login, with its role."""

    def listed(session: Session) -> Envelope[list[UserPublic]]:
        rows = [_public(u) for u in users.list_users(session)]
        return Envelope(data=rows, message=f"{len(rows)} users")

    return await read(listed)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Envelope[UserPublic],
             responses=error_responses(400, 409, 422))  # fmt: skip
async def create_user(body: UserCreate, by: Admin) -> Envelope[UserPublic]:
    """A user with a role (viewer, editor or admin)."""

    def create(session: Session) -> Envelope[UserPublic]:
        user = users.create_user(session, body.login, body.password, body.role)
        session.commit()
        return Envelope(data=_public(user), message=f"User '{user.login}' created ({user.role})")

    return await write(create)


@router.put("/{login}", response_model=Envelope[UserPublic], responses=error_responses(404, 409, 422))
async def update_user(login: Login, body: UserUpdate, by: Admin) -> Envelope[UserPublic]:
    """Change a user's role and/or deactivate it: its next request already has the new rights
    (its tokens and keys included). The last active admin stays one (409)."""

    def update(session: Session) -> Envelope[UserPublic]:
        user = users.update_user(session, login, role=body.role, active=body.active)
        session.commit()
        state = "active" if user.is_active else "deactivated"
        return Envelope(data=_public(user), message=f"User '{user.login}' is {user.role}, {state}")

    return await write(update)
