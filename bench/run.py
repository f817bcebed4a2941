#!/usr/bin/env python3
"""`make bench`: every benchmark of the project, one table, JSON under bench/results/.

python bench/run.py [--only validate] [--workflows N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_validate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflows", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="attune-bench-") as tmp:
        base = bench_validate.generate(Path(tmp), a.workflows, 0.02)
        v = bench_validate.measure(base, "bench_0", a.repeat)
    rows.append(
        {
            "benchmark": f"validate {v['workflows']} workflows, files -> diagnostics, 1 core",
            "seconds": v["total_s"],
            "per_workflow_ms": v["ms_per_workflow"],
            "target": "<= 1.3 ms per workflow",
            "ok": v["ms_per_workflow"] <= 1.3,
            "detail": v,
        }
    )
    width = max(len(r["benchmark"]) for r in rows)
    print(f"{'benchmark':<{width}}  {'seconds':>8}  {'ms/wf':>7}  target                   ok")
    for r in rows:
        print(
            f"{r['benchmark']:<{width}}  {r['seconds']:>8.3f}  {r['per_workflow_ms']:>7.3f}  "
            f"{r['target']:<24} {'yes' if r['ok'] else 'NO'}"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out / f"bench-{stamp}.json"
    path.write_text(
        json.dumps({"machine": platform.platform(), "python": platform.python_version(), "rows": rows}, indent=2)
    )
    print(f"written {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
