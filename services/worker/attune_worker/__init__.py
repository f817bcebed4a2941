"""Attune Celery worker."""
