"""Readiness probes for the dependencies: database and broker."""

from __future__ import annotations

import contextlib
import os

from kombu import Connection

from attune.config import Settings
from attune.db.engine import ping as db_ping


def check_database() -> str | None:
    """None when reachable, else a short reason."""
    try:
        db_ping()
    except Exception as exc:  # any driver error means "not ready"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None


def check_broker(settings: Settings, timeout: float = 2.0) -> str | None:
    if settings.embedded_broker:  # the filesystem broker: its folder must take files
        folder = settings.broker_folder / "queue"
        with contextlib.suppress(OSError):  # made by the first producer or worker anyway
            folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            return f"filesystem broker folder {folder} is missing or not writable"
        return None
    try:
        with Connection(settings.celery.broker_url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None
