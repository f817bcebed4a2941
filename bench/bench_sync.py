#!/usr/bin/env python3
"""Sync at scale, side by side with the floor (read + parse + COPY), in one run.

Starts its own API and workers against a bench database (attune_bench on the
configured Postgres) and Redis database 14, generates the pack trees with
genpacks.py, and measures every target of the performance issue.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_validate import genpacks  # noqa: E402

PG = os.environ.get("ATTUNE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/attune_bench")
REDIS = os.environ.get("ATTUNE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "bench-secret-" + "b" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """Database, API and workers for one bench run."""

    def __init__(self, base: Path, logs: Path) -> None:
        self.base = base
        self.logs = logs
        self.queue = f"attune-bench-{os.getpid()}"  # stray workers of an earlier run never take these jobs
        self.env = {
            **os.environ,
            "ATTUNE__DATABASE__URL": PG,
            "ATTUNE__CELERY__BROKER_URL": REDIS,
            "ATTUNE__CELERY__RESULT_BACKEND": REDIS,
            "ATTUNE__CELERY__TASK_QUEUE": self.queue,
            "ATTUNE__CELERY__RESULT_WAIT_SECONDS": "600",
            "ATTUNE__PACKS_BASE_DIR": str(base),
            "ATTUNE__AUTH__JWT_SECRET": SECRET,
            "ATTUNE__LOG_LEVEL": "WARNING",
        }
        self.workers: list[subprocess.Popen] = []
        self.api: subprocess.Popen | None = None
        self.url = ""
        self.headers: dict[str, str] = {}
        self.client: httpx.Client

    def setup_db(self) -> None:
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("ATTUNE__")})
        from sqlalchemy import create_engine, make_url, text
        from sqlalchemy.pool import NullPool

        from attune.db.migrate import ensure_database, upgrade

        u = make_url(PG)
        admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        admin.dispose()
        ensure_database(PG)
        upgrade(PG)
        import redis

        redis.Redis.from_url(REDIS).flushdb()
        from attune.db.engine import session_scope
        from attune.users.service import create_user

        with session_scope() as s:
            create_user(s, "bench", "bench-password")

    def start_api(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.logs / "api.log").open("w")
        self.api = subprocess.Popen(
            [sys.executable, "-m", "attune_cli.main", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        r = httpx.post(f"{self.url}/auth/login", json={"login": "bench", "password": "bench-password"})
        self.headers = {"Authorization": f"Bearer {r.json()['data']['access_token']}"}
        # one client, kept alive: the figures are the server's, not connection set-up's
        self.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=900)

    def start_workers(self, n: int) -> None:
        self.stop_workers()
        for i in range(n):
            log = (self.logs / f"worker{i}.log").open("w")
            self.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "attune_cli.main",
                        "worker",
                        "--concurrency",
                        "1",
                        "--loglevel",
                        "WARNING",
                        "--hostname",
                        f"bench{i}@%h",
                    ],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            )
        # ready when a ping round-trips through each
        from celery import Celery

        app = Celery(broker=REDIS, backend=REDIS)
        for _ in range(n * 2):
            app.send_task("system.ping", queue=self.queue).get(timeout=60)

    def stop_workers(self) -> None:
        for w in self.workers:
            w.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.api:
            self.api.terminate()
            self.api.wait(timeout=10)

    # -- HTTP helpers ---------------------------------------------------------
    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path)

    def wait_job(self, job_id: str, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/jobs/{job_id}").json()["data"]
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(0.02)
        raise RuntimeError(f"job {job_id} did not finish")


def teardown(stack: Stack, tmp: Path) -> None:
    """Stops the stack; removes its files unless ATTUNE_BENCH_KEEP is set."""
    stack.stop()
    if os.environ.get("ATTUNE_BENCH_KEEP"):
        print(f"kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the floor -----------------------------------------------------------------
def floor(pack_dir: Path, paths: list[Path] | None = None) -> dict[str, float]:
    """Read every file, parse it with yaml-rs, COPY one row per workflow: the floor the
    targets are set against. (``paths``: these files instead of the pack's workflows/, e.g. a
    whole tree's.)

    The floor holds every parsed file until its COPY, and Python's garbage collector walks
    that growing list again and again: about half of its parse is the collector's (10,000
    files: 2.4-2.7 s with it, 1.2-1.4 s without; measured). ``parse_lean`` times the same parse
    with the collector paused, and ``lean`` is read + parse_lean + COPY: the honest floor,
    reported beside the one the targets were set against (README, "Two floors")."""
    import psycopg

    paths = sorted((pack_dir / "workflows").iterdir()) if paths is None else paths
    t0 = time.perf_counter()
    blobs = [p.read_bytes() for p in paths]
    t1 = time.perf_counter()
    docs = _parse_all(blobs)
    t2 = time.perf_counter()
    dsn = PG.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TEMP TABLE floor_rows (ref text PRIMARY KEY, definition jsonb)")
        with conn.cursor() as cur, cur.copy("COPY floor_rows (ref, definition) FROM STDIN") as cp:
            for p, d in zip(paths, docs, strict=True):
                cp.write_row((f"{p.parent.parent.name}.{p.stem}", json.dumps(d)))
        conn.commit()
    t3 = time.perf_counter()
    del docs
    gc.disable()
    try:
        t4 = time.perf_counter()
        _parse_all(blobs)
        parse_lean = time.perf_counter() - t4
    finally:
        gc.enable()
    out = {"read": t1 - t0, "parse": t2 - t1, "copy": t3 - t2, "total": t3 - t0, "parse_lean": parse_lean}
    out["lean"] = out["read"] + parse_lean + out["copy"]
    return out


def _parse_all(blobs: list[bytes]) -> list[Any]:
    import yaml_rs

    docs = []
    for b in blobs:
        try:
            docs.append(yaml_rs.loads(b.decode(), parse_datetime=False))
        except Exception:
            docs.append(None)
    return docs


# -- scenarios -----------------------------------------------------------------
@contextmanager
def rss_peak(stack: Stack):
    """Peak resident memory of the worker processes (and their pool children) while the block runs."""
    peak = {"mb": 0.0}
    stop = threading.Event()

    def pids() -> list[int]:
        out = []
        for w in stack.workers:
            out.append(w.pid)
            try:
                kids = subprocess.run(["pgrep", "-P", str(w.pid)], capture_output=True, text=True).stdout.split()
                out += [int(k) for k in kids]
            except OSError:
                pass
        return out

    def sample() -> None:
        while not stop.is_set():
            for pid in pids():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            peak["mb"] = max(peak["mb"], int(line.split()[1]) / 1024)
                except OSError:
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        stop.set()
        t.join()


def fresh_pack(stack: Stack, ref: str, parked: Path) -> None:
    """(Re)creates the pack record while its directory is parked, so that the auto-sync finds nothing."""
    target = stack.base / ref
    if target.exists():
        target.rename(parked)
    stack.delete(f"/api/v1/packs/{ref}")
    r = stack.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1.0.0"})
    stack.wait_job(r.json()["job_id"])
    parked.rename(target)


def timed_sync(stack: Stack, ref: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = stack.post(f"/api/v1/packs/{ref}/workflows/sync")
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"sync answered {r.status_code}: {r.text[:500]}")
    return dt, r.json()["data"]


def comparable(data: dict) -> dict:
    out = {k: v for k, v in data.items() if k != "job_id"}
    out["workflows"] = [{k: v for k, v in w.items() if k not in ("workflow_def_id", "created", "changed")}
                        for w in data["workflows"]]  # fmt: skip
    out.pop("unchanged_count", None)
    return out


def touch_fraction(pack_dir: Path, fraction: float, offset: int = 0) -> int:
    paths = sorted((pack_dir / "workflows").iterdir())
    step = max(1, int(1 / fraction))
    n = 0
    for p in paths[offset::step]:
        text = p.read_text()
        changed = text.replace('\ndescription: "', '\ndescription: "Changed: ', 1)
        n += changed != text  # a definition that changes (a broken file may say no description)
        p.write_text(changed if changed != text else text + "# changed\n")
    if n == 0:  # a generator whose files say no description would measure nothing
        raise RuntimeError(f"{pack_dir}: no workflow's description could be changed")
    return n


def revision_count(pack_ref: str) -> int:
    import psycopg

    with psycopg.connect(PG.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT count(*) FROM workflow_revisions WHERE pack_ref = %s", (pack_ref,)).fetchone()
        return int(row[0]) if row else 0


def timed_plan(stack: Stack, ref: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = stack.post(f"/api/v1/packs/{ref}/workflows/sync", params={"dry_run": "true"})
    dt = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"plan answered {r.status_code}: {r.text[:500]}")
    return dt, r.json()["data"]


def many_packs(stack: Stack, refs: list[str], poll: float = 0.02) -> float:
    t0 = time.perf_counter()
    r = stack.post("/api/v1/packs/sync", json={"packs": refs})
    batch = r.json()["data"]["batch_id"]
    while True:
        summary = stack.get(f"/api/v1/jobs/batches/{batch}").json()["data"]
        if summary["finished"]:
            break
        time.sleep(poll)
    elapsed = time.perf_counter() - t0
    if summary["jobs"]["failed"]:
        raise RuntimeError(f"{summary['jobs']['failed']} jobs of the batch failed")
    return elapsed


def api_overhead(stack: Stack, ref: str, n: int = 100) -> dict[str, Any]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = stack.post(f"/api/v1/packs/{ref}/workflows/sync")
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    statuses: list[int] = []

    def one() -> None:
        try:
            statuses.append(stack.post(f"/api/v1/packs/{ref}/workflows/sync").status_code)
        except httpx.HTTPError:
            statuses.append(-1)

    threads = [threading.Thread(target=one) for _ in range(50)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    burst = time.perf_counter() - t0
    return {
        "median_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * sorted(times)[int(0.95 * len(times)) - 1],
        "concurrent_50_errors": sum(1 for s in statuses if s != 200),
        "concurrent_50_seconds": burst,
    }


def run(workflows: int = 10000, packs: int = 200, per_pack: int = 50) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="attune-bench-"))
    base, logs, gen = tmp / "packs", tmp / "logs", tmp / "gen"
    base.mkdir()
    logs.mkdir()
    gp = genpacks()
    subprocess.run([sys.executable, str(gp), str(gen / "big"), "--workflows", str(workflows), "--invalid", "0.02"],
                   check=True)  # fmt: skip
    subprocess.run([sys.executable, str(gp), str(base), "--packs", str(packs), "--workflows", str(per_pack),
                    "--actions", "10", "--prefix", "many", "--invalid", "0.02"], check=True)  # fmt: skip
    subprocess.run([sys.executable, str(gp), str(base), "--packs", "1", "--workflows", "1", "--actions", "2",
                    "--prefix", "tiny"], check=True)  # fmt: skip
    big_src = gen / "big" / "bench_0"
    parked = tmp / "parked"
    shutil.copytree(big_src, parked)
    stack = Stack(base, logs)
    out: dict[str, Any] = {"workflows": workflows}
    try:
        stack.setup_db()
        stack.start_api()
        stack.start_workers(1)
        # the floor, twice (best of): the machine is shared and noisy
        out["floor"] = min((floor(big_src) for _ in range(2)), key=lambda f: f["total"])
        for p in range(packs):
            stack.post("/api/v1/packs", json={"ref": f"many_{p}", "label": "m", "version": "1"})
        stack.post("/api/v1/packs", json={"ref": "tiny_0", "label": "t", "version": "1"})

        # cold, one worker (best of two, like the floor)
        fresh_pack(stack, "bench_0", parked)
        with rss_peak(stack) as peak:
            cold1, data1 = timed_sync(stack, "bench_0")
        (base / "bench_0").rename(parked)
        fresh_pack(stack, "bench_0", parked)
        cold1 = min(cold1, timed_sync(stack, "bench_0")[0])
        out["cold_1_worker"] = cold1
        out["worker_rss_peak_mb"] = peak["mb"]
        out["registered"] = data1["registered_count"]
        out["revisions_after_cold"] = revision_count("bench_0")
        # re-sync, nothing changed: no revision written either
        out["resync_unchanged"] = min(timed_sync(stack, "bench_0")[0] for _ in range(3))
        out["resync_unchanged_new_revisions"] = revision_count("bench_0") - out["revisions_after_cold"]
        # re-sync, 1% changed
        out["changed_files"] = touch_fraction(base / "bench_0", 0.01)
        out["resync_1pct"], _ = timed_sync(stack, "bench_0")
        # the plan (dry run) of another 1% changed: best of two, writes nothing
        touch_fraction(base / "bench_0", 0.01, offset=1)
        before = revision_count("bench_0")
        plans = [timed_plan(stack, "bench_0") for _ in range(2)]
        out["plan_1pct"] = min(dt for dt, _ in plans)
        out["plan_1pct_updates"] = plans[0][1]["counts"]["update"]
        out["plan_wrote_revisions"] = revision_count("bench_0") - before
        timed_sync(stack, "bench_0")  # applied: the next measures start from a synced pack
        # many packs, one worker
        refs = [f"many_{p}" for p in range(packs)]
        many_packs(stack, refs)  # first pass registers; the measured passes re-check everything
        for p in range(packs):  # make every file look new so the pass does full work
            touch_fraction(base / f"many_{p}", 1.0)
        out["many_1_worker"] = many_packs(stack, refs)
        out["api"] = api_overhead(stack, "tiny_0")

        # two workers
        stack.start_workers(2)
        shutil.rmtree(base / "bench_0")
        shutil.copytree(big_src, parked)
        fresh_pack(stack, "bench_0", parked)
        cold2, data2 = timed_sync(stack, "bench_0")
        out["cold_2_workers"] = cold2
        out["same_result_1_vs_2_workers"] = comparable(data1) == comparable(data2)
        for p in range(packs):
            touch_fraction(base / f"many_{p}", 1.0)
        out["many_2_workers"] = many_packs(stack, refs)
    finally:
        teardown(stack, tmp)
    return out


# -- a tree of small packs (issue 15) ---------------------------------------------
def cpu_seconds(stack: Stack) -> float:
    """User + system CPU seconds the worker processes and their pool children have used."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for w in stack.workers:
        pids = [w.pid]
        kids = subprocess.run(["pgrep", "-P", str(w.pid)], capture_output=True, text=True).stdout.split()
        pids += [int(k) for k in kids]
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _create_packs(stack: Stack, refs: list[str]) -> None:
    """The pack records, eight requests at a time; their auto-syncs (no directory yet) finish first."""
    from concurrent.futures import ThreadPoolExecutor

    def one(ref: str) -> str:
        r = stack.post("/api/v1/packs", json={"ref": ref, "label": ref, "version": "1.0.0"})
        if r.status_code != 201:
            raise RuntimeError(f"creating {ref}: {r.status_code} {r.text[:300]}")
        return r.json()["job_id"]

    with ThreadPoolExecutor(8) as pool:
        job_ids = list(pool.map(one, refs))
    for job_id in job_ids:
        stack.wait_job(job_id)


def tree_result(stack: Stack, batch: str) -> dict[str, dict]:
    """Every job's result of a batch, by pack (job ids and timings left out)."""
    summary = stack.get(f"/api/v1/jobs/batches/{batch}").json()["data"]
    out = {}
    for job_id in summary["job_ids"]:
        job = stack.get(f"/api/v1/jobs/{job_id}").json()["data"]
        out[job["pack_ref"]] = comparable(job["result"])
    return out


def run_tree(packs: int = 2000, per_pack: int = 20, workers: int = 2) -> dict[str, Any]:
    """A tree of small packs synced in bulk (POST /api/v1/packs/sync with every ref), against
    the floor of the same files: the cold sync, then an unchanged re-sync (best of two),
    with the worker CPU per pack job."""
    tmp = Path(tempfile.mkdtemp(prefix="attune-bench-tree-"))
    base, logs, gen = tmp / "packs", tmp / "logs", tmp / "gen"
    base.mkdir()
    logs.mkdir()
    subprocess.run([sys.executable, str(genpacks()), str(gen), "--packs", str(packs), "--workflows", str(per_pack),
                    "--actions", "3", "--prefix", "tree", "--invalid", "0.02"], check=True)  # fmt: skip
    refs = [f"tree_{p}" for p in range(packs)]
    files = sorted(p for ref in refs for p in (gen / ref / "workflows").iterdir())
    stack = Stack(base, logs)
    out: dict[str, Any] = {"packs": packs, "per_pack": per_pack, "workers": workers, "files": len(files)}
    try:
        stack.setup_db()
        stack.start_api()
        stack.start_workers(workers)
        out["floor"] = min((floor(gen, files) for _ in range(2)), key=lambda f: f["total"])
        _create_packs(stack, refs)
        for ref in refs:
            (gen / ref).rename(base / ref)
        cpu0 = cpu_seconds(stack)
        out["cold"] = many_packs(stack, refs, poll=0.25)
        out["cold_cpu_ms_per_pack"] = 1000 * (cpu_seconds(stack) - cpu0) / packs
        unchanged = []
        for _ in range(2):
            cpu0 = cpu_seconds(stack)
            unchanged.append(many_packs(stack, refs, poll=0.25))
            cpu = cpu_seconds(stack) - cpu0
            out["unchanged_cpu_ms_per_pack"] = min(out.get("unchanged_cpu_ms_per_pack", 1e9), 1000 * cpu / packs)
        out["unchanged"] = min(unchanged)
        empty_registry(stack, workers)
        out["one_pack_cold"] = one_pack_cold(stack, tmp, packs * per_pack)
    finally:
        teardown(stack, tmp)
    return out


def empty_registry(stack: Stack, workers: int) -> None:
    """The stack started again on an empty database, as the tree's cold bulk sync began: the
    one pack it is compared with then writes into as empty a registry. After the tree (its
    40,000 workflows, their history and file cache, the staging table's dead rows until a
    vacuum) the same pack synced about a fifth slower (14.9-16.2 s on an empty database,
    17.8-18.7 s after the tree; 2026-11-30)."""
    stack.stop()
    stack.setup_db()
    stack.start_api()
    stack.start_workers(workers)


def one_pack_cold(stack: Stack, tmp: Path, workflows: int) -> float:
    """What the tree is measured against in issue 15's title ("as cheap per workflow as one
    big pack"): as many workflows in one pack, from the same generator with the same flags
    (three actions, 2% broken), synced cold by the same number of workers (chunked across
    them), after the tree, in the same run, on an empty database (``empty_registry``). Its
    time against the tree's cold bulk sync needs no floor."""
    gen, parked = tmp / "one", tmp / "one_parked"
    subprocess.run([sys.executable, str(genpacks()), str(gen), "--workflows", str(workflows), "--actions", "3",
                    "--prefix", "one", "--invalid", "0.02"], check=True)  # fmt: skip
    (gen / "one_0").rename(parked)
    r = stack.post("/api/v1/packs", json={"ref": "one_0", "label": "one_0", "version": "1.0.0"})
    stack.wait_job(r.json()["job_id"])  # its auto-sync, before the directory is there
    parked.rename(stack.base / "one_0")
    seconds, data = timed_sync(stack, "one_0")
    if data["registered_count"] < workflows * 0.9:  # 2% are broken on purpose
        raise RuntimeError(f"the one-pack sync registered {data['registered_count']} of {workflows}")
    return seconds


# -- pushed versions (issue 17) --------------------------------------------------
def _forget_blob(sha256: str) -> None:
    """The stored archive gone (its pack deleted first): the next upload stores it again."""
    import psycopg

    with psycopg.connect(PG.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("DELETE FROM pack_blobs WHERE sha256 = %s", (sha256,))


def timed_push(stack: Stack, ref: str, archive: Path) -> tuple[float, dict]:
    """Upload + activate: the POST until its answer (the job's result, the API waiting for it)."""
    body = archive.read_bytes()
    t0 = time.perf_counter()
    r = stack.post(f"/api/v1/packs/{ref}/versions", content=body, params={"allow_errors": "true"})
    dt = time.perf_counter() - t0
    if r.status_code != 200 or not r.json()["data"]["activated"]:
        raise RuntimeError(f"push answered {r.status_code}: {r.text[:500]}")
    return dt, r.json()["data"]


def timed_activate(stack: Stack, ref: str, version_id: int) -> float:
    t0 = time.perf_counter()
    r = stack.post(f"/api/v1/packs/{ref}/versions/{version_id}/activate", params={"allow_errors": "true"})
    dt = time.perf_counter() - t0
    if r.status_code != 200 or not r.json()["data"]["activated"]:
        raise RuntimeError(f"activate answered {r.status_code}: {r.text[:500]}")
    return dt


def run_push(workflows: int = 10000, repeat: int = 2) -> dict[str, Any]:
    """Upload + activate of the pack as an archive (a fresh pack, the worker's cache empty,
    the archive not yet stored) against the cold sync of the same pack from disk, one
    worker, best of ``repeat`` each; then the re-activation of a version the worker's cache
    holds (a rollback: every file read again, 1% of them changed)."""
    from attune_cli.client.push import build_archive

    tmp = Path(tempfile.mkdtemp(prefix="attune-bench-push-"))
    base, logs, gen, cache_dir = tmp / "packs", tmp / "logs", tmp / "gen", tmp / "cache"
    base.mkdir()
    logs.mkdir()
    subprocess.run([sys.executable, str(genpacks()), str(gen), "--workflows", str(workflows), "--invalid", "0.02"],
                   check=True)  # fmt: skip
    src, parked = gen / "bench_0", tmp / "parked"
    shutil.copytree(src, parked)
    stack = Stack(base, logs)
    stack.env["ATTUNE__VERSIONS__CACHE_DIR"] = str(cache_dir)
    stack.env["ATTUNE__VERSIONS__MAX_UPLOAD_BYTES"] = str(512 * 1024 * 1024)
    out: dict[str, Any] = {"workflows": workflows}
    try:
        stack.setup_db()
        stack.start_api()
        stack.start_workers(1)
        stack.post("/api/v1/packs", json={"ref": "bench_0", "label": "b", "version": "1"})
        colds = []
        for _ in range(repeat):
            fresh_pack(stack, "bench_0", parked)
            colds.append(timed_sync(stack, "bench_0")[0])
            (base / "bench_0").rename(parked)
        out["cold_from_disk"] = min(colds)

        archive = tmp / "bench_0.tar.gz"
        t0 = time.perf_counter()
        build_archive(src, archive)
        out["archive_build"] = time.perf_counter() - t0
        out["archive_bytes"] = archive.stat().st_size
        pushes = []
        for _ in range(repeat):
            stack.delete("/api/v1/packs/bench_0")  # a fresh pack, as for the cold sync from disk
            shutil.rmtree(cache_dir, ignore_errors=True)
            first = None
            dt, first = timed_push(stack, "bench_0", archive)
            pushes.append(dt)
            if len(pushes) < repeat:
                stack.delete("/api/v1/packs/bench_0")
                _forget_blob(first["sha256"])
        assert first is not None
        out["push_cold"] = min(pushes)
        out["push_registered"] = first["synced"]["registered_count"]

        # a second version (1% changed), then back and forth: each version is in the cache
        touch_fraction(src, 0.01)
        second = tmp / "bench_0-2.tar.gz"
        build_archive(src, second)
        out["push_1pct_changed"], v2 = timed_push(stack, "bench_0", second)
        cached = {p.name for p in cache_dir.iterdir()}
        assert {first["sha256"], v2["sha256"]} <= cached, cached
        times = []
        for _ in range(repeat):
            times.append(timed_activate(stack, "bench_0", first["version_id"]))
            timed_activate(stack, "bench_0", v2["version_id"])
        out["reactivate_cached"] = min(times)
    finally:
        teardown(stack, tmp)
    return out


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10000), indent=2))
