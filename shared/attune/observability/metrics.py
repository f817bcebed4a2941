"""Prometheus metrics of the API and the workers.

The API serves ``GET /metrics``: its request counts and latencies by route, plus, read at
scrape time, the jobs by kind and status (from the database, so every worker's jobs count)
and the queue depth (from the broker). Each worker serves its own on
``metrics.worker_port``: jobs by kind and outcome, sync durations, workflows processed,
tasks run. Worker pool processes write to ``PROMETHEUS_MULTIPROC_DIR``, set by
``attune worker`` before they start, and the worker's endpoint adds them up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from attune.sync.schemas import JobResult, SyncResult, ValidateResult

log = logging.getLogger(__name__)

_DURATIONS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SYNC_DURATIONS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

# -- API ----------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "attune_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "attune_http_request_duration_seconds", "Time to answer, by route template", ["method", "route"],
    buckets=_DURATIONS,
)  # fmt: skip

# -- worker -------------------------------------------------------------------------
JOBS_FINISHED = Counter("attune_worker_jobs", "Jobs this worker finished, by kind and outcome", ["kind", "outcome"])
SYNC_DURATION = Histogram(
    "attune_job_duration_seconds", "From a job's start to its outcome, by kind", ["kind"], buckets=_SYNC_DURATIONS
)
WORKFLOWS = Counter(
    "attune_workflows_processed",
    "Workflow files a finished job went through, by kind and outcome (registered, unchanged, invalid)",
    ["kind", "outcome"],
)
TASKS = Counter("attune_worker_tasks", "Celery tasks run by this worker, by task and outcome", ["task", "outcome"])


def record_job(kind: str, status: str, seconds: float | None, result: JobResult | None) -> None:
    try:
        JOBS_FINISHED.labels(kind, status).inc()
        if seconds is not None:
            SYNC_DURATION.labels(kind).observe(seconds)
        if isinstance(result, SyncResult):
            unchanged = result.unchanged_count
            WORKFLOWS.labels(kind, "registered").inc(max(result.registered_count - unchanged, 0))
            WORKFLOWS.labels(kind, "unchanged").inc(unchanged)
            WORKFLOWS.labels(kind, "invalid").inc(len(result.errors))
        elif isinstance(result, ValidateResult):
            WORKFLOWS.labels(kind, "valid").inc(max(result.validated_count - result.error_count, 0))
            WORKFLOWS.labels(kind, "invalid").inc(result.error_count)
    except Exception as exc:  # metrics never break a job
        log.warning("could not record job metrics: %s", exc)


def record_replayed(kind: str, summary: dict[str, Any]) -> None:
    """``record_job`` for a succeeded sync known by its summary (a replayed one: every file unchanged)."""
    try:
        JOBS_FINISHED.labels(kind, "succeeded").inc()
        WORKFLOWS.labels(kind, "unchanged").inc(summary.get("unchanged_count", 0))
        WORKFLOWS.labels(kind, "invalid").inc(summary.get("error_count", 0))
    except Exception as exc:  # metrics never break a job
        log.warning("could not record job metrics: %s", exc)


class StateCollector(Collector):
    """Read at each scrape: jobs by kind and status, and the broker queue's depth."""

    def __init__(self, jobs_by_state: Any, queue_depth: Any) -> None:
        self.jobs_by_state = jobs_by_state
        self.queue_depth = queue_depth

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("attune_jobs", "Jobs in the database by kind and status", labels=["kind", "status"])
        try:
            for kind, status, count in self.jobs_by_state():
                jobs.add_metric([kind, status], count)
        except Exception as exc:
            log.warning("metrics: jobs not counted: %s", exc)
        yield jobs
        depth = GaugeMetricFamily("attune_queue_depth", "Task messages waiting in the broker queue", labels=["queue"])
        try:
            queue, count = self.queue_depth()
            depth.add_metric([queue], count)
        except Exception as exc:
            log.warning("metrics: queue depth not read: %s", exc)
        yield depth


def worker_registry() -> CollectorRegistry:
    """What a worker's endpoint serves: the sum over its pool processes."""
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    return registry
