"""API keys (make, list, revoke, check) and the principal a request acts as.

Flushes only; the caller commits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from sqlmodel import Session

from attune.access import repository
from attune.access.models import ApiKey
from attune.access.principal import KeyIdentity, Principal
from attune.access.roles import Role, allows, lower
from attune.access.schemas import KeyCreate, KeyCreated, KeyPublic
from attune.db.types import utcnow
from attune.errors import Conflict, Forbidden, NotFound, Unauthorized
from attune.users import service as users

PREFIX = "atk_"
# atk_<16 hex: the id>_<43 url-safe base64: 32 random bytes>
KEY_PATTERN = re.compile(r"^atk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
INVALID = "Invalid API key"
# keys a user may hold at once, neither revoked nor expired (a viewer made 3,000 in a minute,
# and the admin's key list grew to 1.5 MB)
MAX_LIVE_KEYS = 100
_DUMMY_HASH = hashlib.sha256(b"attune-no-such-key").hexdigest()


def is_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (else it is an access token)."""
    return token.startswith(PREFIX)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _public(key: ApiKey, owner: str) -> KeyPublic:
    return KeyPublic.model_validate({**key.model_dump(), "owner": owner})


def create_key(session: Session, by: Principal, body: KeyCreate) -> KeyCreated:
    """A key of ``by``'s user, with at most its role; the secret is in the answer only."""
    if not allows(by.role, body.role):
        raise Forbidden(f"A key cannot have a role above yours: you are '{by.role.value}', asked '{body.role.value}'")
    if repository.live_count_locked(session, by.user_id, utcnow()) >= MAX_LIVE_KEYS:
        raise Conflict(
            f"You hold {MAX_LIVE_KEYS} API keys neither revoked nor expired, the most a user may: "
            "revoke one first (attune key list, attune key revoke ID)"
        )
    secret = secrets.token_urlsafe(32)
    key_id = secrets.token_hex(8)
    expires = None if body.expires_in_days is None else utcnow() + timedelta(days=body.expires_in_days)
    packs = None if body.packs is None else sorted(set(body.packs))
    key = repository.add(
        session,
        ApiKey(id=key_id, name=body.name, user_id=by.user_id, role=body.role.value, packs=packs,
               secret_hash=_hash(secret), expires_at=expires),
    )  # fmt: skip
    return KeyCreated.model_validate({**_public(key, by.login).model_dump(), "secret": f"{PREFIX}{key_id}_{secret}"})


def list_keys(session: Session, by: Principal, *, limit: int, offset: int) -> tuple[list[KeyPublic], int]:
    """A page of the caller's keys (an admin's call: of every key), and how many in all."""
    owner = None if allows(by.role, Role.ADMIN) else by.user_id
    rows, total = repository.list_with_owners(session, owner, limit=limit, offset=offset)
    return [_public(key, login) for key, login in rows], total


def revoke_key(session: Session, by: Principal, key_id: str) -> KeyPublic:
    """Revokes a key of the caller (an admin: any key); its next use is refused."""
    key = repository.get(session, key_id)
    if key is None or (key.user_id != by.user_id and not allows(by.role, Role.ADMIN)):
        raise NotFound(f"API key '{key_id}' not found")
    repository.revoke(session, key_id, utcnow())
    key = repository.get(session, key_id)
    assert key is not None
    owner = users.get_user_by_id(session, key.user_id)
    return _public(key, owner.login)


def principal_of_user(session: Session, user_id: int) -> Principal:
    """A logged-in user as of now (a role changed since the token was issued counts)."""
    user = users.active_user(session, user_id)
    assert user.id is not None
    return Principal(user_id=user.id, login=user.login, role=Role(user.role))


class WrongKey(Unauthorized):
    """A key string that is no key: malformed, unknown, or a wrong secret (a guess)."""


UNKNOWN_KEY = "unknown"


def key_of(session: Session, token: str) -> ApiKey | None:
    """The stored key a key string names (by its id), whatever its secret; None if none."""
    match = KEY_PATTERN.match(token)
    return repository.get(session, match.group(1)) if match else None


def guess_bucket(key: ApiKey | None) -> str:
    """What a refused guess of a key string counts against: the id of the key it names
    (guesses of that key's secret), else one bucket for every unknown or malformed key."""
    return key.id if key is not None else UNKNOWN_KEY


def principal_of_key(session: Session, token: str, address: str, key: ApiKey | None) -> Principal:
    """The principal of ``key`` (``key_of(token)``), its use recorded; Unauthorized for a
    malformed, unknown, wrong, revoked or expired key, or one whose user is gone or
    deactivated."""
    match = KEY_PATTERN.match(token)
    presented = _hash(match.group(2)) if match else _DUMMY_HASH
    if not hmac.compare_digest(presented, key.secret_hash if key else _DUMMY_HASH) or key is None:
        raise WrongKey(INVALID)
    now = utcnow()
    if key.revoked_at is not None:
        raise Unauthorized("API key revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("API key expired")
    try:
        user = users.active_user(session, key.user_id)
    except Unauthorized:
        raise Unauthorized("API key's user is deactivated or gone") from None
    repository.touch(session, key.id, now, address[:64])
    packs = None if key.packs is None else tuple(key.packs)
    return Principal(
        user_id=key.user_id, login=user.login, role=lower(key.role, user.role),
        key=KeyIdentity(id=key.id, name=key.name, packs=packs),
    )  # fmt: skip
