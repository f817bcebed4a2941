"""Roles, ordered: each allows what the one before it allows, and more."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    VIEWER = "viewer"  # every GET
    EDITOR = "editor"  # also create, update, sync, validate, plan packs
    ADMIN = "admin"  # also delete packs, manage users and every key


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


def allows(held: Role | str, needed: Role) -> bool:
    """Whether ``held`` is ``needed`` or above it. An unknown stored role allows nothing."""
    try:
        return _RANK[Role(held)] >= _RANK[needed]
    except ValueError:
        return False


def lower(a: Role | str, b: Role | str) -> Role:
    """The lesser of two roles (an API key acts with its own role, never above its creator's)."""
    ra, rb = Role(a), Role(b)
    return ra if _RANK[ra] <= _RANK[rb] else rb
