#!/usr/bin/env python3
"""What revisions cost a cold sync (issue 16), A/B in one process on one database.

    python bench/bench_revisions.py [--workflows 10000] [--pairs 4]

The pack of bench/genpacks.py synced cold by the engine (``sync_whole``, every file read),
once with the revisions written as they are and once with ``history.record`` and
``history.tombstones`` replaced by no-ops, interleaved ``--pairs`` times: the same code,
machine and minute on both sides, so the ratio is the revisions' own cost, whatever the
machine's speed does between ``make bench`` runs. Database: ATTUNE_BENCH_DATABASE_URL's
server, database ``<name>_revisions`` (dropped and made again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_validate import genpacks  # noqa: E402

BASE = os.environ.get("ATTUNE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/attune_bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflows", type=int, default=10000)
    ap.add_argument("--pairs", type=int, default=4)
    a = ap.parse_args()
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    url = make_url(BASE)
    url = url.set(database=f"{url.database}_revisions").render_as_string(hide_password=False)
    os.environ["ATTUNE__DATABASE__URL"] = url
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    from attune.db.migrate import ensure_database, upgrade

    ensure_database(url)
    upgrade(url)
    from sqlmodel import Session

    import attune.models  # noqa: F401  (every table's model, for the ORM)
    from attune.db.engine import get_engine
    from attune.jobs import service as jobs
    from attune.jobs.models import JobKind, JobTrigger
    from attune.packs.models import Pack
    from attune.sync import engine, history

    tmp = Path(tempfile.mkdtemp(prefix="attune-bench-revisions-"))
    subprocess.run([sys.executable, str(genpacks()), str(tmp), "--workflows", str(a.workflows), "--invalid", "0.02"],
                   check=True, capture_output=True)  # fmt: skip
    real = history.record, history.tombstones

    def cold(with_revisions: bool) -> float:
        with Session(get_engine(), expire_on_commit=False) as s:
            s.execute(text("DELETE FROM packs WHERE ref = 'bench_0'"))
            s.execute(text("DELETE FROM workflow_revisions"))
            s.commit()
            pack = Pack(ref="bench_0", label="b", version="1")
            s.add(pack)
            s.commit()
            job = jobs.create_job(s, pack, JobKind.SYNC, JobTrigger.MANUAL)
            s.commit()
            assert pack.id is not None
            target = engine.Target(job.id, pack.id, "bench_0", tmp / "bench_0", 1 << 20, True, "", "bench")
            if not with_revisions:
                history.record = history.tombstones = lambda *args, **kw: None  # type: ignore[assignment]
            try:
                t0 = time.perf_counter()
                engine.sync_whole(s, target)
                s.commit()
                took = time.perf_counter() - t0
            finally:
                history.record, history.tombstones = real
            written = s.execute(text("SELECT count(*) FROM workflow_revisions")).scalar()
            assert bool(written) == with_revisions, written
            return took

    on: list[float] = []
    off: list[float] = []
    try:
        cold(True)  # caches warm, the same for both sides
        for i in range(a.pairs):
            off.append(cold(False))
            on.append(cold(True))
            print(f"pair {i}: without revisions {off[-1]:.2f} s, with {on[-1]:.2f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {
        "workflows": a.workflows, "without": off, "with": on,
        "ratio_of_medians": statistics.median(on) / statistics.median(off), "ratio_of_minimums": min(on) / min(off),
    }  # fmt: skip
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
