"""Who is calling, and may they: the dependencies every route names (README: "Access").

A route declares the role it needs and how a key limited to packs is checked on it:
``Viewer``, ``Editor``, ``Admin`` check the pack of the route's ``{ref}`` (a pack, or a
workflow whose pack it is); a route without one refuses such keys, unless the handler
checks the packs it touches itself (``allow(..., packs=PackScope.HANDLER)``). The
declaration is also written into the OpenAPI document (``x-attune-role``,
``x-attune-pack-scope``, ``x-attune-api-keys``), which the role-matrix test reads.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from attune.access import service as access
from attune.access.principal import Principal
from attune.access.roles import Role
from attune.auth import service as auth_sessions
from attune.auth import throttle
from attune.auth.security import decode_token
from attune.config import get_settings
from attune.errors import Unauthorized
from attune_api.deps import read, write

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from POST /auth/login, or an API key (atk_...) from POST /api/v1/keys",
)


class PackScope(enum.StrEnum):
    PATH = "path"  # the pack of the route's {ref}
    HANDLER = "handler"  # the handler checks the packs it touches (a body, a job's pack)
    NONE = "none"  # not about one pack: refused to keys limited to packs


def _user_principal(session: Session, token: str) -> Principal:
    return access.principal_of_user(session, auth_sessions.user_of_access_token(session, get_settings().auth, token))


def _key_principal(session: Session, token: str, address: str) -> Principal:
    settings = get_settings()
    key = access.key_of(session, token)  # one read: the bucket, then the secret's check
    bucket = access.guess_bucket(key)
    throttle.refuse_key_guesses(settings, address, bucket)
    try:
        principal = access.principal_of_key(session, token, address, key)
    except access.WrongKey:  # a guess; a revoked or expired key is no guess (its own 401, always)
        throttle.key_refused(settings, address, bucket)
        raise
    session.commit()  # its last use
    return principal


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        if request.headers.get("authorization"):
            raise Unauthorized("Malformed Authorization header: expected 'Bearer <token>'")
        raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'")
    token = credentials.credentials
    if access.is_key(token):
        address = request.client.host if request.client else "unknown"
        return await write(_key_principal, token, address)
    decode_token(get_settings().auth, token, "access")  # no database for a bad token
    # Its own short read: no transaction (on SQLite, no lock) is held while the handler waits.
    return await read(_user_principal, token)


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def allow(role: Role, packs: PackScope = PackScope.PATH, *, keys: bool = True) -> Any:
    """A dependency: the caller's principal, if it holds ``role`` (else 403 naming it)."""

    async def principal(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        found = await authenticate(request, credentials)
        found.require(role)
        if not keys:
            found.require_login(f"call {_route_path(request)}")
        ref = request.path_params.get("ref")
        if packs is PackScope.PATH and isinstance(ref, str):
            found.require_pack(ref.split(".", 1)[0])
        elif packs is not PackScope.HANDLER:
            found.require_every_pack(f"call {_route_path(request)}")
        return found

    principal.attune_access = (role, packs, keys)  # type: ignore[attr-defined]
    return principal


Viewer = Annotated[Principal, Depends(allow(Role.VIEWER))]
Editor = Annotated[Principal, Depends(allow(Role.EDITOR))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]


def _declared(dependant: Dependant) -> tuple[Role, PackScope, bool] | None:
    for dep in dependant.dependencies:
        found = getattr(dep.call, "attune_access", None) or _declared(dep)
        if found:
            return found  # type: ignore[no-any-return]
    return None


_SCOPE_TEXT = {
    PackScope.PATH: "keys limited to packs: only on their packs",
    PackScope.HANDLER: "keys limited to packs: only for their packs",
    PackScope.NONE: "keys limited to packs: refused",
}


def annotate(router: APIRouter) -> None:
    """Writes each route's access rule into its OpenAPI operation (and its description).
    Called on a router before the app includes it."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        declared = _declared(route.dependant)
        if declared is None or "x-attune-role" in (route.openapi_extra or {}):
            continue  # public, or annotated already (the routers are shared by every app made)
        role, packs, keys = declared
        if packs is PackScope.PATH and "{ref}" not in route.path:
            packs = PackScope.NONE
        route.openapi_extra = {
            **(route.openapi_extra or {}),
            "x-attune-role": role.value,
            "x-attune-pack-scope": packs.value,
            "x-attune-api-keys": keys,
        }
        rule = f"Needs the **{role.value}** role; " + (_SCOPE_TEXT[packs] if keys else "API keys: refused") + "."
        route.description = f"{route.description}\n\n{rule}" if route.description else rule
