"""Response envelopes shared by every router."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")
MAX_OFFSET = 2**31 - 1  # a page offset the database can take (larger ones are a 422, not a 500)


class Envelope(BaseModel, Generic[T]):
    data: T
    message: str


class Pagination(BaseModel):
    total: int
    limit: int
    offset: int


class Page(BaseModel, Generic[T]):
    data: list[T]
    pagination: Pagination
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="A human sentence saying what went wrong")
    details: list[dict[str, Any]] | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an endpoint can answer."""
    text = {
        400: "Bad input",
        401: "Missing, invalid or expired token",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Request body too large",
        422: "Invalid request",
        429: "Too many attempts",
        503: "A dependency (database, broker) is unavailable",
    }
    return {c: {"model": ErrorBody, "description": text.get(c, "Error")} for c in codes}
