"""The principal a request acts as: a user (logged in), or an API key of a user."""

from __future__ import annotations

from dataclasses import dataclass

from attune.access.roles import Role, allows
from attune.errors import Forbidden


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    id: str
    name: str
    packs: tuple[str, ...] | None  # None: every pack


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    login: str
    role: Role  # a key's: its own, never above its creator's role of today
    key: KeyIdentity | None = None

    @property
    def actor(self) -> str:
        """Who to name on jobs and revisions: the login, or ``key:<name>#<id>``."""
        return self.login if self.key is None else f"key:{self.key.name}#{self.key.id}"

    def _who(self) -> str:
        return f"user '{self.login}'" if self.key is None else f"API key '{self.key.name}'"

    def require(self, needed: Role) -> None:
        if not allows(self.role, needed):
            raise Forbidden(f"This needs the '{needed.value}' role: {self._who()} has '{self.role.value}'")

    def require_pack(self, pack_ref: str, *, named: bool = True) -> None:
        """403 when a key limited to packs is used on another one (``named``: the caller
        named that pack; else, a job's, the answer does not say which pack it is)."""
        if self.key is not None and self.key.packs is not None and pack_ref not in self.key.packs:
            raise Forbidden(f"{self._limited()}: not '{pack_ref}'" if named else f"{self._limited()}: not this one's")

    @property
    def limited_to_packs(self) -> bool:
        """Whether this is a key limited to packs (``require_pack`` may refuse)."""
        return self.key is not None and self.key.packs is not None

    def require_every_pack(self, what: str) -> None:
        """403 for a key limited to packs, on a route that is not about one pack of its."""
        if self.limited_to_packs:
            raise Forbidden(f"{self._limited()}: it cannot {what}")

    def _limited(self) -> str:
        assert self.key is not None and self.key.packs is not None
        return f"API key '{self.key.name}' is limited to packs {', '.join(self.key.packs)}"

    def require_login(self, what: str) -> None:
        """403 for any API key: managing keys takes a person's login (a leaked key cannot
        make itself a successor that outlives its revocation)."""
        if self.key is not None:
            raise Forbidden(f"API keys cannot {what}: log in as a user")
