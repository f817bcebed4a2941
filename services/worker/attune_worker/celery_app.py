"""The Celery application, configured from Attune's settings."""

from __future__ import annotations

from celery import Celery

from attune.config import get_settings


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery(
        "attune",
        broker=settings.celery.broker_url,
        backend=settings.celery.result_backend,
        include=["attune_worker.tasks"],
    )
    app.conf.update(
        task_default_queue=settings.celery.task_queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A task is acknowledged when it finishes, and given back to the queue
        # if the worker dies, so a killed worker's job runs again elsewhere.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


app = make_celery()
