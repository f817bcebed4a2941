"""The worker's Celery application, configured from Attune's settings."""

from __future__ import annotations

import gc
from contextvars import Token
from typing import Any

from celery import Celery, signals

from attune.broker.app import make_celery as _make
from attune.config import get_settings
from attune.jobs import leases
from attune.observability import logs
from attune.observability.metrics import TASKS


def make_celery() -> Celery:
    return _make(get_settings(), include=["attune_worker.tasks"])


app = make_celery()
_tokens: dict[str, Token] = {}


@signals.setup_logging.connect
def _logging(**_: Any) -> None:
    """Our logging (JSON or text, with request ids) instead of Celery's."""
    logs.configure(get_settings(), "worker")


@signals.worker_ready.connect
def _leases(**_: Any) -> None:
    """The main process looks for tasks whose worker died (their lease expired) and sends
    them again; pool processes renew the leases of the tasks they run."""
    leases.keep_sweeping()


@signals.worker_process_init.connect
def _collector(**_: Any) -> None:
    """A pool process leaves what it inherited (modules, the app) out of the garbage
    collector's passes, and collects the young generation less often: a sync allocates
    hundreds of thousands of objects (cache rows, results) that live until its end, and
    with Python's defaults the collector re-walked them 0.1-0.15 s of an unchanged
    10,000-file re-sync (measured in process). Memory is freed by reference counting as
    before; only cycles wait a little longer."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


GC_YOUNG_THRESHOLD = 20_000  # Python's default: 700 allocations


@signals.task_prerun.connect
def _request_id_in(task_id: str, task: Any, **_: Any) -> None:
    # the API's request id, sent as a message header; tasks sent from here carry it on
    _tokens[task_id] = logs.request_id_var.set(task.request.get(logs.TASK_HEADER))


@signals.task_postrun.connect
def _request_id_out(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    TASKS.labels(task.name, (state or "unknown").lower()).inc()
    token = _tokens.pop(task_id, None)
    if token is not None:
        logs.request_id_var.reset(token)
