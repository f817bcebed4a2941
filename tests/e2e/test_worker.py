"""A task round-trips through Redis to a real worker process that reads the database."""

from __future__ import annotations


def test_ping_round_trip(worker, user):
    from attune_worker.celery_app import make_celery

    result = make_celery().send_task("system.ping").get(timeout=30)
    assert result["pong"] is True
    assert result["users"] == 1  # the worker read the same database
