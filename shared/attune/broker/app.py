"""Celery configuration shared by the worker and by the API's producer."""

from __future__ import annotations

from typing import Any

from celery import Celery

from attune.config import Settings


def _transport_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded_broker:
        # Messages are files in one folder that producers write and workers read
        # (one machine). No redelivery of a killed worker's task with this broker.
        folder = settings.broker_folder
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.05,
        }
    return {
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        "visibility_timeout": settings.celery.visibility_timeout_seconds,
    }


def celery_conf(settings: Settings) -> dict[str, Any]:
    if settings.celery.result_backend.startswith("db+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": settings.celery.broker_url,
        "result_backend": settings.celery.result_backend,
        "task_default_queue": settings.celery.task_queue,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # A task is acknowledged when it finishes and given back to the queue if
        # its worker dies, so a killed worker's job runs again elsewhere.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        "broker_transport_options": _transport_options(settings),
        "redis_socket_connect_timeout": 3,
        "redis_socket_timeout": 10,
        "worker_hijack_root_logger": False,
    }


def make_celery(settings: Settings, *, include: list[str] | None = None) -> Celery:
    if settings.embedded_broker:
        from attune.broker import fs

        fs.install()
    app = Celery("attune", include=include or [])
    app.conf.update(celery_conf(settings))
    return app
