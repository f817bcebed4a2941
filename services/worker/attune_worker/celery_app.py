"""The worker's Celery application, configured from Attune's settings."""

from __future__ import annotations

from celery import Celery

from attune.celery_config import make_celery as _make
from attune.config import get_settings


def make_celery() -> Celery:
    return _make(get_settings(), include=["attune_worker.tasks"])


app = make_celery()
