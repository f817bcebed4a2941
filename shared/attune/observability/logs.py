"""Logging for the API and the workers: JSON lines (one object per record) or readable text,
each record carrying the request id that started the work.

The API takes the id from the ``X-Request-ID`` header (or makes one), answers with it, and
sends it with every task as a message header; the worker puts it back in place while the
task runs, and the tasks it sends (chunks of a large sync) carry it on.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from attune.config import Settings

request_id_var: ContextVar[str | None] = ContextVar("attune_request_id", default=None)
HEADER = "x-request-id"
TASK_HEADER = "attune_request_id"
_MAX_ID = 128


def new_request_id(offered: str | None = None) -> str:
    """The caller's id when it is a sane token, else a fresh one."""
    if offered and len(offered) <= _MAX_ID and offered.isascii() and offered.replace("-", "").isalnum():
        return offered
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "component": self.component,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():  # extra={...} fields
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{request_id}]" if request_id else ""
        return super().format(record)


def configure(settings: Settings, component: str) -> None:
    """Root logging for a process: JSON or text per settings.log_format, with request ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component) if settings.json_logs else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_attune", False):
            root.removeHandler(old)
    handler._attune = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    if settings.json_logs:
        # uvicorn's own handlers would print text beside ours: let its records reach the root
        for name in ("uvicorn", "uvicorn.error"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
        # the API's access lines (attune.api.access, with route and request id) replace uvicorn's
        logging.getLogger("uvicorn.access").disabled = True
