"""Test services: the machine's real Postgres and Redis (or testcontainers), a real worker.

Set ATTUNE_TEST_DATABASE_URL / ATTUNE_TEST_REDIS_URL to choose them. When they
are unset and a Docker engine answers, containers are started instead; when
neither, the local defaults (127.0.0.1) are used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# server: Postgres + Redis (the default); embedded: SQLite + the filesystem broker, as a
# fresh `attune dev` runs (make test runs the end-to-end tests in that mode too).
MODE = os.environ.get("ATTUNE_TEST_MODE", "server")
EMBEDDED = MODE == "embedded"
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/attune_test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
TEST_SECRET = "test-secret-" + "x" * 40
WORKER_CHUNK_SIZE = 50
ROOT = Path(__file__).resolve().parent.parent

# Settings every test process (and the worker it starts) shares. Set before
# anything imports attune, whose settings are read once per process.
os.environ.setdefault("ATTUNE__AUTH__JWT_SECRET", TEST_SECRET)
os.environ["ATTUNE__CELERY__TASK_QUEUE"] = f"attune-test-{uuid.uuid4().hex[:8]}"
os.environ.pop("ATTUNE_CONFIG", None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="also run the long soak tests (make soak)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    soak = pytest.mark.skip(reason="a long soak test: run with `make soak`")
    server = pytest.mark.skip(reason="needs the Postgres/Redis servers (not the embedded mode)")
    for item in items:
        if "soak" in item.keywords and not config.getoption("--soak"):
            item.add_marker(soak)
        if "server_only" in item.keywords and EMBEDDED:
            item.add_marker(server)


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def service_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if EMBEDDED:
        os.environ["ATTUNE__DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
        yield "", ""
        return
    db = os.environ.get("ATTUNE_TEST_DATABASE_URL")
    redis_url = os.environ.get("ATTUNE_TEST_REDIS_URL")
    containers = []
    if (db is None or redis_url is None) and _docker_engine():
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        if db is None:
            pg = PostgresContainer("postgres:16-alpine", driver="psycopg").start()
            containers.append(pg)
            db = pg.get_connection_url()
        if redis_url is None:
            rc = RedisContainer("redis:7-alpine").start()
            containers.append(rc)
            redis_url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
    try:
        yield db or DEFAULT_DB, redis_url or DEFAULT_REDIS
    finally:
        for c in containers:
            c.stop()


@pytest.fixture(scope="session")
def packs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packs")


@pytest.fixture(scope="session")
def configured(service_urls: tuple[str, str], packs_dir: Path) -> Iterator[dict[str, str]]:
    """Points attune's settings at the test services and a fresh, migrated database."""
    db_url, redis_url = service_urls
    env = {
        "ATTUNE__DATABASE__URL": db_url,
        "ATTUNE__CELERY__BROKER_URL": redis_url,
        "ATTUNE__CELERY__RESULT_BACKEND": redis_url,
        "ATTUNE__PACKS_BASE_DIR": str(packs_dir),
    }
    os.environ.update(env)
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    from attune.config import get_settings, reset_settings
    from attune.db.engine import reset_engine
    from attune.db.migrate import ensure_database, upgrade

    reset_settings()
    reset_engine()
    if EMBEDDED:  # empty URLs: the embedded defaults, under a fresh data_dir
        settings = get_settings()
        env.update(
            ATTUNE__DATABASE__URL=settings.database.url,
            ATTUNE__CELERY__BROKER_URL=settings.celery.broker_url,
            ATTUNE__CELERY__RESULT_BACKEND=settings.celery.result_backend,
            ATTUNE__DATA_DIR=str(settings.data_dir),
        )
        upgrade(settings.database.url)
        yield env
        reset_engine()
        return
    # A fresh database per session: drop what a previous run left.
    u = make_url(db_url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()
    ensure_database(db_url)
    upgrade(db_url)
    yield env
    reset_engine()


# pack_versions and pack_blob_chunks would go with packs and pack_blobs (CASCADE); named so
# that no table of stored archives outlives its test (pack_blobs references nothing).
TABLES = ", ".join(
    ("api_keys", "pack_versions", "pack_blob_chunks", "pack_blobs", "workflow_revisions", "workflow_definitions", "actions",
     "jobs", "job_batches", "packs", "users")
)  # fmt: skip
_WORKED_ON_SQL = (
    "SELECT count(*) FROM jobs j WHERE j.status = 'running' "
    "AND EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = j.id)"
)


@pytest.fixture
def db(configured: dict[str, str]) -> Iterator[None]:
    """Each test starts from empty tables."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from attune.db.engine import get_engine

    # A worker may still be running a job a previous test started: drop what
    # is queued, let what runs finish, then empty the tables. A job a worker runs
    # holds a lease until it ends; a row a test wrote as running holds none (waiting
    # for it cost the next test the whole 30 s).
    _purge_queue(configured["ATTUNE__CELERY__BROKER_URL"])
    if EMBEDDED:
        _empty_sqlite()
        yield
        return
    deadline = time.monotonic() + 30
    for attempt in range(20):
        try:
            with get_engine().begin() as conn:
                while time.monotonic() < deadline and conn.execute(text(_WORKED_ON_SQL)).scalar():
                    time.sleep(0.05)
                conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
            break
        except OperationalError:  # deadlock or lock timeout against a finishing job: try again
            if attempt == 19:
                raise
            time.sleep(0.1)
    yield


def _empty_sqlite() -> None:
    from sqlalchemy import text

    from attune.db.engine import get_engine

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # outside a transaction: the worker must be able to write
        with get_engine().connect() as conn:
            if not conn.execute(text(_WORKED_ON_SQL)).scalar():
                break
        time.sleep(0.05)
    with get_engine().begin() as conn:
        for table in ("sync_staging", "sync_chunks", "pack_files", "pack_sync_state", *TABLES.split(", ")):
            conn.execute(text(f"DELETE FROM {table}"))


def _purge_queue(broker_url: str) -> None:
    """Drops messages a previous test left for jobs whose rows are gone, and login counters."""
    if EMBEDDED:
        from attune.auth import throttle
        from attune.config import get_settings

        folder = get_settings().broker_folder / "queue"
        for message in folder.glob(f"*.{os.environ['ATTUNE__CELERY__TASK_QUEUE']}.msg"):
            message.unlink(missing_ok=True)
        throttle._local.counts.clear()
        return
    import redis

    from attune.auth.throttle import PREFIX

    client = redis.Redis.from_url(broker_url)
    try:
        client.delete(os.environ["ATTUNE__CELERY__TASK_QUEUE"])
        for key in client.scan_iter(PREFIX + "*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def app(db: None):
    from attune_api.main import create_app

    return create_app()


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def user(db: None) -> dict[str, str]:
    from attune.db.engine import session_scope
    from attune.users.service import create_user

    creds = {"login": "alice", "password": "correct horse battery"}
    with session_scope() as session:
        create_user(session, creds["login"], creds["password"])
    return creds


@pytest.fixture
def tokens(client, user) -> dict[str, str]:
    r = client.post("/auth/login", json=user)
    assert r.status_code == 200, r.text
    return r.json()["data"]


@pytest.fixture
def auth(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture(scope="session")
def worker(configured: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen]:
    """A real Celery worker process consuming the test queue."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    # Small chunks: packs over WORKER_CHUNK_SIZE files take the chunked (fan-out) path here.
    metrics_port = free_port()
    env = {
        **os.environ,
        **configured,
        "ATTUNE__SYNC__CHUNK_SIZE": str(WORKER_CHUNK_SIZE),
        "ATTUNE__METRICS__WORKER_PORT": str(metrics_port),
    }
    proc = start_worker(env, f"test-{uuid.uuid4().hex[:6]}@%h", log, concurrency=2)
    from attune_worker.celery_app import make_celery

    celery = make_celery()
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log.read_text()}")
        try:
            celery.send_task("system.ping").get(timeout=5)
            break
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"worker did not answer a ping in 60 s:\n{log.read_text()}") from None
    proc.log_path = log  # type: ignore[attr-defined]
    proc.metrics_port = metrics_port  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        stop_processes([proc])


WORKFLOW = """version: "1.0"
description: {desc}
tags: [{tags}]
tasks:
  - name: start
    action: {action}
    input:
      message: "{{{{ parameters.target }}}}"
    next:
      - when: "{{{{ succeeded() }}}}"
        do: [finish]
  - name: finish
    action: {action}
"""


def workflow_yaml(action: str = "core.echo", desc: str = "a workflow", tags: str = "demo") -> str:
    return WORKFLOW.format(action=action, desc=desc, tags=tags)


class PackTree:
    """Writes pack directories under the packs base directory the API and worker read."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def make(self, ref: str, workflows: dict[str, str], actions: dict[str, str] | None = None) -> Path:
        root = self.base / ref
        if root.exists():
            shutil.rmtree(root)
        (root / "workflows").mkdir(parents=True)
        (root / "actions").mkdir()
        (root / "pack.yaml").write_text(f"ref: {ref}\nlabel: {ref}\nversion: '1.0.0'\n")
        for name, text in (actions if actions is not None else {"echo": "runner_type: shell\n"}).items():
            (root / "actions" / f"{name}.yaml").write_text(text)
        for name, text in workflows.items():
            (root / "workflows" / name).write_text(text)
        return root


@pytest.fixture
def packs(packs_dir: Path) -> PackTree:
    return PackTree(packs_dir)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(configured: dict[str, str], worker, tmp_path_factory) -> Iterator[str]:
    """The API served by `attune api` on a free port (with the session's worker)."""
    with api_process({**os.environ, **configured}, tmp_path_factory.mktemp("api") / "api.log") as (url, _):
        yield url


@contextmanager
def api_process(env: dict[str, str], log: Path, *, timeout: float = 60) -> Iterator[tuple[str, int]]:
    """An `attune api` process on a free port with this environment, healthy before it is
    yielded as (its URL, its pid); stopped afterwards. Its output goes to ``log``."""
    import httpx

    port = free_port()
    with log.open("w") as fh:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "attune_cli.main", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"API did not start:\n{log.read_text()}")
        time.sleep(0.1)
    try:
        yield url, proc.pid
    finally:
        stop_processes([proc])


def start_worker(env: dict[str, str], hostname: str, log_path: Path, concurrency: int = 1) -> subprocess.Popen:
    """A Celery worker process with the given environment (its own queue, database, ...).
    Its metrics endpoint is off unless the environment names a port."""
    env = {"ATTUNE__METRICS__WORKER_PORT": "0", **env}
    with log_path.open("w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "attune_cli.main", "worker", "--concurrency", str(concurrency), "--loglevel", "INFO",
             "--hostname", hostname],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


def stop_processes(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def ping_queue(broker_url: str, queue: str, times: int = 1, timeout: float = 60) -> None:
    """Waits until workers on ``queue`` answer ``times`` pings."""
    from celery import Celery

    probe = Celery(broker=broker_url, backend=broker_url)
    for _ in range(times):
        probe.send_task("system.ping", queue=queue).get(timeout=timeout)
