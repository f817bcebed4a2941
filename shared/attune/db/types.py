from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on Postgres, plain JSON elsewhere (SQLite in embedded mode).
JSONType = JSON().with_variant(JSONB(), "postgresql")


class _UTCDateTime(TypeDecorator):
    """Timestamps in UTC, returned timezone-aware by every dialect (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is not None and dialect.name == "sqlite" and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


TZDateTime = _UTCDateTime()


def utcnow() -> datetime:
    return datetime.now(UTC)
