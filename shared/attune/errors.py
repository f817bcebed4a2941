"""Typed domain errors; the API turns each into ``{"error": message}`` with its status."""

from __future__ import annotations

from typing import Any


class AttuneError(Exception):
    status_code = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(AttuneError):
    status_code = 400


class Unauthorized(AttuneError):
    status_code = 401


class Forbidden(AttuneError):
    """Authenticated, but the caller's role or key does not allow this."""

    status_code = 403


class NotFound(AttuneError):
    status_code = 404


class Conflict(AttuneError):
    status_code = 409


class TooManyRequests(AttuneError):
    status_code = 429


class DependencyUnavailable(AttuneError):
    """A database or broker that the request needs is down."""

    status_code = 503
