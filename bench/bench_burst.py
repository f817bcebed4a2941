#!/usr/bin/env python3
"""Bursts against one API process: N concurrent reads, N concurrent syncs.

    python bench/bench_burst.py [--mode server|embedded|both] [--requests 300]
    python bench/bench_burst.py --url http://127.0.0.1:18082 --login admin --password-stdin \\
        [--pack my_pack] [--requests 300 600]          # attack a stack that is already running

Without --url it starts its own stack with default pool and admission settings
(one `attune api`, one worker with 2 processes) on a fresh database:
Postgres `attune_bench_burst` and Redis database 14 (server mode), or SQLite
and the filesystem broker in a temporary folder (embedded mode). It registers
one pack of 100 workflows and ten packs of one workflow, then measures:

- the serial time of `GET /api/v1/workflows?limit=50` (median of 30, one at a time);
- a burst of N such reads fired at once, each on its own connection: p50, p99, the
  time until the last answer, and how many did not answer 200 (500s, 503s, dropped);
- a burst of N `POST /api/v1/packs/{ref}/workflows/sync` (default wait: the
  request waits for the worker) over the ten small packs: p50, p99, drain time,
  answers other than 200/202, and whether every job finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PG = os.environ.get(
    "ATTUNE_BENCH_BURST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/attune_bench_burst"
)
REDIS = os.environ.get("ATTUNE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "bench-secret-" + "b" * 40
READ_PATH = "/api/v1/workflows?limit=50"
BIG_PACK, SMALL_PACKS = "burst_big", [f"burst_{i}" for i in range(10)]

WORKFLOW = """version: "1.0"
description: workflow {n} of a burst bench pack
tags: [bench, burst]
tasks:
  - name: start
    action: {pack}.echo
    input: {{message: "{{{{ parameters.target }}}}"}}
    next:
      - when: "{{{{ succeeded() }}}}"
        do: [finish]
  - name: finish
    action: {pack}.echo
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_pack(base: Path, ref: str, workflows: int) -> None:
    root = base / ref
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "actions").mkdir(exist_ok=True)
    (root / "pack.yaml").write_text(f"ref: {ref}\nlabel: {ref}\nversion: '1.0.0'\n")
    (root / "actions" / "echo.yaml").write_text("runner_type: shell\nentry_point: echo.sh\n")
    for n in range(workflows):
        (root / "workflows" / f"wf_{n:04d}.yaml").write_text(WORKFLOW.format(n=n, pack=ref))


class Stack:
    """One API process and one worker (2 processes), on their own database and broker."""

    def __init__(self, mode: str, tmp: Path) -> None:
        self.mode = mode
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "ATTUNE__PACKS_BASE_DIR": str(tmp / "packs"),
            "ATTUNE__AUTH__JWT_SECRET": SECRET,
            "ATTUNE__LOG_LEVEL": "WARNING",
            "ATTUNE__METRICS__WORKER_PORT": "0",
            "ATTUNE__CELERY__TASK_QUEUE": f"attune-burst-{os.getpid()}",
        }
        for key in [k for k in self.env if k.startswith("ATTUNE__") and k.split("__")[1] in ("DATABASE", "CELERY")]:
            if key != "ATTUNE__CELERY__TASK_QUEUE":
                del self.env[key]  # this bench's own services, never the caller's
        self.env.pop("ATTUNE_CONFIG", None)
        if mode == "server":
            self.env.update(
                ATTUNE__DATABASE__URL=PG, ATTUNE__CELERY__BROKER_URL=REDIS, ATTUNE__CELERY__RESULT_BACKEND=REDIS
            )
        else:
            self.env["ATTUNE__DATA_DIR"] = str(tmp / "data")
            (tmp / "data").mkdir()
        self.url = ""

    def cli(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run([sys.executable, "-m", "attune_cli.main", *args], env=self.env, cwd=ROOT, check=True,
                       input=stdin, text=True, capture_output=True)  # fmt: skip

    def start(self) -> None:
        if self.mode == "server":
            from sqlalchemy import create_engine, make_url, text
            from sqlalchemy.pool import NullPool

            u = make_url(PG)
            admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
            admin.dispose()
            import redis

            redis.Redis.from_url(REDIS).flushdb()
        self.cli("db", "upgrade", "--create")
        self.cli("user", "create", "bench", "--password-stdin", stdin="bench-password\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        logs = self.tmp / "logs"
        logs.mkdir(exist_ok=True)
        cmds = {
            "api": ["api", "--host", "127.0.0.1", "--port", str(port)],
            "worker": ["worker", "--concurrency", "2", "--loglevel", "WARNING", "--hostname", f"burst{os.getpid()}@%h"],
        }
        for name, args in cmds.items():
            with (logs / f"{name}.log").open("w") as log:
                self.procs.append(subprocess.Popen([sys.executable, "-m", "attune_cli.main", *args], env=self.env,
                                                   stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not start: " + (logs / "api.log").read_text()[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def login(url: str, user: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{url}/auth/login", json={"login": user, "password": password}, timeout=30)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['data']['access_token']}"}


def wait_job(client: httpx.Client, job_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/jobs/{job_id}")
        if r.status_code == 200 and r.json()["data"]["status"] in ("succeeded", "failed"):
            return str(r.json()["data"]["status"])
        time.sleep(0.05)
    return "unfinished"


def populate(url: str, headers: dict[str, str], base: Path) -> None:
    write_pack(base, BIG_PACK, 100)
    for ref in SMALL_PACKS:
        write_pack(base, ref, 1)
    with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
        for ref in [BIG_PACK, *SMALL_PACKS]:
            r = c.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1.0.0"})
            r.raise_for_status()
            wait_job(c, r.json()["job_id"])


def serial_ms(url: str, headers: dict[str, str], path: str = READ_PATH, n: int = 30) -> float:
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        c.get(path)
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.get(path)
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
    return 1000 * statistics.median(times)


async def _burst(url: str, headers: dict[str, str], requests: list[tuple[str, str]], timeout: float) -> dict[str, Any]:
    """Fires every request at once, each on its own connection."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    results: list[tuple[int, float, dict[str, Any] | None, str | None]] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits) as client:
        start = asyncio.Event()

        async def one(method: str, path: str) -> None:
            await start.wait()
            t0 = time.perf_counter()
            try:
                r = await client.request(method, path)
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                results.append((r.status_code, time.perf_counter() - t0, body, r.headers.get("retry-after")))
            except httpx.HTTPError as exc:
                results.append((-1, time.perf_counter() - t0, {"error": repr(exc)}, None))

        tasks = [asyncio.create_task(one(m, p)) for m, p in requests]
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        drain = time.perf_counter() - t0
    times = sorted(r[1] for r in results)
    statuses = Counter(r[0] for r in results)
    return {
        "requests": len(results),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(1000 * times[len(times) // 2], 1),
        "p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 1),
        "max_ms": round(1000 * times[-1], 1),
        "drain_s": round(drain, 2),
        "retry_after_on_503": all(r[3] for r in results if r[0] == 503),
        "_bodies": [r[2] for r in results],
    }


def read_burst(url: str, headers: dict[str, str], n: int, timeout: float = 300) -> dict[str, Any]:
    out = asyncio.run(_burst(url, headers, [("GET", READ_PATH)] * n, timeout))
    out.pop("_bodies")
    out["errors"] = n - out["statuses"].get("200", 0)
    out["http_500"] = out["statuses"].get("500", 0)
    return out


def sync_burst(url: str, headers: dict[str, str], n: int, packs: list[str], timeout: float = 600) -> dict[str, Any]:
    reqs = [("POST", f"/api/v1/packs/{packs[i % len(packs)]}/workflows/sync") for i in range(n)]
    out = asyncio.run(_burst(url, headers, reqs, timeout))
    bodies = out.pop("_bodies")
    out["errors"] = n - out["statuses"].get("200", 0) - out["statuses"].get("202", 0)
    out["http_500"] = out["statuses"].get("500", 0)
    job_ids = [b["data"]["job_id"] for b in bodies if b and isinstance(b.get("data"), dict) and b["data"].get("job_id")]
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
        ends = Counter(wait_job(c, j) for j in job_ids)
    out["jobs"] = dict(ends)
    out["jobs_finished_after_s"] = round(time.perf_counter() - t0, 2)
    return out


def measure(url: str, headers: dict[str, str], sizes: list[int], packs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"serial_read_ms": round(serial_ms(url, headers), 1)}
    for n in sizes:
        out[f"reads_{n}"] = read_burst(url, headers, n)
    for n in sizes:
        out[f"syncs_{n}"] = sync_burst(url, headers, n, packs)
    return out


def run(mode: str = "server", sizes: list[int] | None = None) -> dict[str, Any]:
    """Its own stack in ``mode`` (server or embedded), populated, then the bursts."""
    sizes = sizes or [300]
    tmp = Path(tempfile.mkdtemp(prefix="attune-burst-"))
    stack = Stack(mode, tmp)
    try:
        stack.start()
        headers = login(stack.url, "bench", "bench-password")
        populate(stack.url, headers, tmp / "packs")
        return {"mode": mode, **measure(stack.url, headers, sizes, SMALL_PACKS)}
    finally:
        stack.stop()
        if os.environ.get("ATTUNE_BENCH_KEEP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["server", "embedded", "both"], default="both")
    ap.add_argument("--requests", type=int, nargs="+", default=[300], help="burst sizes")
    ap.add_argument("--url", help="a running API to attack instead of starting one")
    ap.add_argument("--login", default="admin")
    ap.add_argument("--password-stdin", action="store_true")
    ap.add_argument("--pack", action="append", help="packs to sync in the sync bursts (with --url)")
    a = ap.parse_args()
    if a.url:
        password = sys.stdin.readline().rstrip("\n") if a.password_stdin else os.environ.get("ATTUNE_PASSWORD", "")
        headers = login(a.url, a.login, password)
        print(json.dumps(measure(a.url, headers, a.requests, a.pack or []) if a.pack else
                         {"serial_read_ms": round(serial_ms(a.url, headers), 1),
                          **{f"reads_{n}": read_burst(a.url, headers, n) for n in a.requests}}, indent=2))  # fmt: skip
        return
    modes = ["server", "embedded"] if a.mode == "both" else [a.mode]
    print(json.dumps([run(m, a.requests) for m in modes], indent=2))


if __name__ == "__main__":
    main()
