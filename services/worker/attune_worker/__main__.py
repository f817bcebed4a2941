"""``python -m attune_worker [celery worker options]``: run a worker (what ``attune worker`` runs),
serving its metrics on metrics.worker_port."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

from attune.config import get_settings


def _serve_metrics(port: int) -> None:
    """Pool processes count into files of a private folder; this process serves their sum.
    Set before anything imports prometheus_client, which reads the folder's name once."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = tempfile.mkdtemp(prefix="attune-worker-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    from prometheus_client import start_http_server

    from attune.observability.metrics import worker_registry

    try:
        start_http_server(port, registry=worker_registry())
    except OSError as exc:  # a second worker on the same host: it runs, without an endpoint
        print(f"worker metrics not served: port {port}: {exc.strerror}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    if settings.metrics.worker_port:
        _serve_metrics(settings.metrics.worker_port)
    from attune_worker.celery_app import app

    app.worker_main(["worker", "-Q", settings.celery.task_queue, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
