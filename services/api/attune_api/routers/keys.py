"""API keys for pipelines: make one (its secret shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from sqlmodel import Session

from attune.access import service as access
from attune.access.principal import Principal
from attune.access.roles import Role
from attune.access.schemas import KeyCreate, KeyCreated, KeyPublic
from attune_api.access import PackScope, allow
from attune_api.deps import read, write
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses

router = APIRouter(prefix="/api/v1/keys", tags=["API keys"], responses=error_responses(401, 403, 422, 503))

# any user, logged in (a key cannot make, list or revoke keys)
KeyManager = Annotated[Principal, Depends(allow(Role.VIEWER, PackScope.NONE, keys=False))]
KeyId = Annotated[str, Path(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$", examples=["3f2a9c1e5b7d0a4c"])]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Envelope[KeyCreated],
             responses=error_responses(409, 422))  # fmt: skip
async def create_key(body: KeyCreate, by: KeyManager) -> Envelope[KeyCreated]:
    """Make a key with at most your role, optionally limited to packs. The answer holds its
    secret, `atk_<id>_<secret>`: this once only (the server keeps a hash). It acts with the
    lesser of its role and yours, checked on each use."""

    def create(session: Session) -> Envelope[KeyCreated]:
        created = access.create_key(session, by, body)
        session.commit()
        message = f"API key '{created.name}' created: keep its secret now, it is not shown again"
        return Envelope(data=created, message=message)

    return await write(create)


@router.get("", response_model=Page[KeyPublic])
async def list_keys(
    by: KeyManager,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[KeyPublic]:
    """Your keys (an admin: every key), newest first, with their last use; never a secret.
    A user holds at most 100 keys that are neither revoked nor expired."""

    def listed(session: Session) -> Page[KeyPublic]:
        rows, total = access.list_keys(session, by, limit=limit, offset=offset)
        return Page(
            data=rows,
            pagination=Pagination(total=total, limit=limit, offset=offset),
            message=f"{len(rows)} of {total} API keys",
        )

    return await read(listed)


@router.delete("/{key_id}", response_model=Envelope[KeyPublic], responses=error_responses(404, 422))
async def revoke_key(key_id: KeyId, by: KeyManager) -> Envelope[KeyPublic]:
    """Revoke one of your keys (an admin: any key); its next use answers 401."""

    def revoke(session: Session) -> Envelope[KeyPublic]:
        revoked = access.revoke_key(session, by, key_id)
        session.commit()
        return Envelope(data=revoked, message=f"API key '{revoked.name}' revoked")

    return await write(revoke)
