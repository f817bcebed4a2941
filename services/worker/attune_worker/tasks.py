"""Thin tasks: take ids, open a session scope, call one service, return a plain dict."""

from __future__ import annotations

import os
import socket

from attune.db.engine import session_scope
from attune.users import repository as users
from attune_worker.celery_app import app


@app.task(name="system.ping")
def ping() -> dict[str, object]:
    """Round-trip check: proves the worker is consuming and can read the database."""
    with session_scope() as session:
        user_count = users.count(session)
    return {"pong": True, "worker": f"{socket.gethostname()}:{os.getpid()}", "users": user_count}
