#!/usr/bin/env python3
"""`make bench`: every benchmark of the project, one table, JSON under bench/results/.

    python bench/run.py [--workflows 10000] [--skip-sync] [--skip-burst] [--only push|tree]

Validation throughput (files -> diagnostics, one core), then sync at scale
through the HTTP API with real workers, side by side with the floor (read +
parse with yaml-rs + COPY of one row per workflow) measured in the same run,
then bursts of 300 concurrent reads and 300 concurrent syncs against one API
process, on Postgres and Redis and in the embedded mode (bench_burst.py), then
the pack pushed as an archive (upload + activate) against its cold sync from disk,
and the re-activation of a version the worker's cache holds (``--only push``: that alone),
then a tree of 2,000 small packs synced in bulk by two workers, cold and unchanged, against
the floor of the same files and against one pack of as many workflows synced cold by the
same number of workers on an empty database (``--only tree``: that alone).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_burst  # noqa: E402
import bench_sync  # noqa: E402
import bench_validate  # noqa: E402

PREVIOUS_COLD_RATIO = 1.45  # cold sync / floor before revisions (README, run A)


def burst_rows(b: dict) -> list[dict]:
    """A 300-request burst of reads and one of syncs against one API process (bench_burst)."""
    mode, reads, syncs = b["mode"], b["reads_300"], b["syncs_300"]
    serial = b["serial_read_ms"]
    finished = syncs["jobs"].get("succeeded", 0)
    return [
        {"what": f"300 concurrent reads ({mode}): answers not 200", "value": reads["errors"], "unit": "",
         "target": "0", "ok": reads["errors"] == 0},
        {"what": f"300 concurrent reads ({mode}): p50 / p99 (one alone: {serial} ms)",
         "value": f"{reads['p50_ms']:.0f} / {reads['p99_ms']:.0f}", "unit": "ms", "target": "", "ok": True},
        {"what": f"300 concurrent reads ({mode}): all answered after", "value": reads["drain_s"], "unit": "s",
         "target": "<= 10", "ok": reads["drain_s"] <= 10},
        {"what": f"300 concurrent syncs ({mode}): answers not 200/202", "value": syncs["errors"], "unit": "",
         "target": "0", "ok": syncs["errors"] == 0},
        {"what": f"300 concurrent syncs ({mode}): p50 / p99, all answered after {syncs['drain_s']} s",
         "value": f"{syncs['p50_ms']:.0f} / {syncs['p99_ms']:.0f}", "unit": "ms", "target": "", "ok": True},
        {"what": f"300 concurrent syncs ({mode}): jobs succeeded", "value": finished, "unit": "", "target": "300",
         "ok": finished == 300},
    ]  # fmt: skip


def push_rows(p: dict) -> list[dict]:
    """Upload + activate of the pack as an archive, against its cold sync from disk (bench_sync.run_push)."""
    cold, push, again = p["cold_from_disk"], p["push_cold"], p["reactivate_cached"]
    mb = p["archive_bytes"] / 1e6
    return [
        {"what": f"cold sync from disk, 1 worker ({p['workflows']} workflows)", "value": round(cold, 2), "unit": "s",
         "target": "", "ok": True},
        {"what": f"upload ({mb:.1f} MB) + activate, cache empty ({push:.2f} s) / cold sync from disk",
         "value": round(push / cold, 3), "unit": "x", "target": "<= 1.3", "ok": push / cold <= 1.3},
        {"what": f"re-activation of a cached version, rollback ({again:.2f} s) / cold sync from disk",
         "value": round(again / cold, 3), "unit": "x", "target": "", "ok": True},
        {"what": f"(building the archive, client side: {p['archive_build']:.2f} s; "
                 f"push of 1% changed: {p['push_1pct_changed']:.2f} s)", "value": "", "unit": "", "target": "",
         "ok": True},
    ]  # fmt: skip


def lean_rows(name: str, f: dict, what: str, seconds: float) -> list[dict]:
    """The floor without the garbage collector's passes over its own list of parsed files
    (bench_sync.floor), and a cold sync against it: shown, not targets (README, "Two floors")."""
    return [
        {"what": f"{name}, collector paused in its parse: read {f['read']:.2f} + parse {f['parse_lean']:.2f} "
                 f"+ COPY {f['copy']:.2f}", "value": round(f["lean"], 2), "unit": "s", "target": "", "ok": True},
        {"what": f"{what} / that floor", "value": round(seconds / f["lean"], 3), "unit": "x", "target": "",
         "ok": True},
    ]  # fmt: skip


def tree_rows(t: dict) -> list[dict]:
    """A tree of small packs synced in bulk, against the floor of the same files (bench_sync.run_tree)."""
    fl = t["floor"]["total"]
    cold, same = t["cold"] / fl, t["unchanged"] / fl
    name = f"{t['packs']} packs x {t['per_pack']}, {t['workers']} workers"
    return [
        {"what": f"tree floor ({t['files']} files): read {t['floor']['read']:.2f} + parse {t['floor']['parse']:.2f} "
                 f"+ COPY {t['floor']['copy']:.2f}", "value": round(fl, 2), "unit": "s", "target": "", "ok": True},
        *lean_rows("tree floor", t["floor"], f"{name}: cold bulk sync ({t['cold']:.2f} s)", t["cold"]),
        {"what": f"{name}: cold bulk sync ({t['cold']:.2f} s) / floor", "value": round(cold, 3), "unit": "x",
         "target": "<= 0.8", "ok": cold <= 0.8},
        {"what": f"{name}: unchanged bulk re-sync ({t['unchanged']:.2f} s) / floor", "value": round(same, 3),
         "unit": "x", "target": "<= 0.1", "ok": same <= 0.1},
        *one_pack_rows(t, name),
        {"what": f"{name}: worker CPU per pack job, cold / unchanged",
         "value": f"{t['cold_cpu_ms_per_pack']:.1f} / {t['unchanged_cpu_ms_per_pack']:.1f}", "unit": "ms",
         "target": "", "ok": True},
    ]  # fmt: skip


def one_pack_rows(t: dict, name: str) -> list[dict]:
    """The tree against one pack of as many workflows, synced cold by as many workers in the
    same run, on an empty database as the tree was (issue 15's title), without a target;
    absent from the results of earlier runs."""
    if "one_pack_cold" not in t:
        return []
    one = t["one_pack_cold"]
    return [
        {"what": f"one pack of {t['files']}, {t['workers']} workers: cold sync ({one:.2f} s) / tree floor",
         "value": round(one / t["floor"]["total"], 3), "unit": "x", "target": "", "ok": True},
        {"what": f"{name}: cold bulk sync / that one pack's cold sync", "value": round(t["cold"] / one, 3),
         "unit": "x", "target": "", "ok": True},
    ]  # fmt: skip


def report(rows: list[dict], detail: dict, started: float) -> None:
    width = max(len(r["what"]) for r in rows)
    print(f"\n{'measure':<{width}}  {'value':>9} {'unit':<12} {'target':<8} ok")
    for r in rows:
        print(f"{r['what']:<{width}}  {r['value']!s:>9} {r['unit']:<12} {r['target']:<8} {'yes' if r['ok'] else 'NO'}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                "seconds": round(time.perf_counter() - started, 1), "rows": rows, "detail": detail},
                               indent=2, default=str))  # fmt: skip
    print(f"written {path.relative_to(HERE.parent)} in {time.perf_counter() - started:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflows", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-sync", action="store_true", help="only the validation benchmark (no services)")
    ap.add_argument("--skip-burst", action="store_true", help="without the 300-request bursts (bench_burst)")
    ap.add_argument(
        "--only",
        choices=["push", "tree"],
        help="only this part: push (upload + activate, bench_sync.run_push) or tree (bench_sync.run_tree)",
    )
    a = ap.parse_args()
    started = time.perf_counter()
    rows: list[dict] = []
    if a.only == "push":
        p = bench_sync.run_push(a.workflows)
        report(push_rows(p), {"push": p}, started)
        return
    if a.only == "tree":
        t = bench_sync.run_tree()
        report(tree_rows(t), {"tree": t}, started)
        return

    with tempfile.TemporaryDirectory(prefix="attune-bench-") as tmp:
        base = bench_validate.generate(Path(tmp), a.workflows, 0.02)
        v = bench_validate.measure(base, "bench_0", a.repeat)
    rows.append(
        {
            "what": f"validate {v['workflows']} workflows, files -> diagnostics, 1 core",
            "value": v["ms_per_workflow"],
            "unit": "ms/workflow",
            "target": "<= 1.3",
            "ok": v["ms_per_workflow"] <= 1.3,
        }
    )

    detail: dict = {"validate": v}
    if not a.skip_sync:
        s = bench_sync.run(a.workflows)
        detail["sync"] = s
        fl = s["floor"]["total"]

        def ratio(what: str, value: float, target: float, higher_is_better: bool = False) -> None:
            ok = value >= target if higher_is_better else value <= target
            sign = ">= " if higher_is_better else "<= "
            rows.append({"what": what, "value": round(value, 3), "unit": "x", "target": sign + str(target), "ok": ok})

        f = s["floor"]
        what = f"floor: read {f['read']:.2f} + parse {f['parse']:.2f} + COPY {f['copy']:.2f}"
        rows.append({"what": what, "value": round(fl, 3), "unit": "s", "target": "", "ok": True})
        rows += lean_rows("floor", f, f"cold sync, 1 worker ({s['cold_1_worker']:.2f} s)", s["cold_1_worker"])
        ratio(f"cold sync, 1 worker ({s['cold_1_worker']:.2f} s) / floor", s["cold_1_worker"] / fl, 1.5)
        # the cold sync now writes a revision per workflow: at most 10% above the cold sync before
        # revisions (1.45x floor, README run A), both relative to the floor of their own run
        ratio(f"cold sync with revisions ({s['revisions_after_cold']} revisions) / cold sync before (1.45x floor)",
              s["cold_1_worker"] / fl / PREVIOUS_COLD_RATIO, 1.1)  # fmt: skip
        ratio(f"re-sync, nothing changed ({s['resync_unchanged']:.2f} s) / floor", s["resync_unchanged"] / fl, 0.1)
        unchanged_revisions = s["resync_unchanged_new_revisions"]
        rows.append({"what": "re-sync, nothing changed: revisions written", "value": unchanged_revisions,
                     "unit": "", "target": "0", "ok": unchanged_revisions == 0})  # fmt: skip
        ratio(f"re-sync, 1% changed ({s['resync_1pct']:.2f} s) / floor", s["resync_1pct"] / fl, 0.15)
        ratio(f"plan, 1% changed ({s['plan_1pct']:.2f} s, {s['plan_1pct_updates']} updates) / floor",
              s["plan_1pct"] / fl, 0.2)  # fmt: skip
        rows.append({"what": "plan: revisions written", "value": s["plan_wrote_revisions"], "unit": "",
                     "target": "0", "ok": s["plan_wrote_revisions"] == 0})  # fmt: skip
        ratio(
            f"cold sync: 1 worker / 2 workers ({s['cold_2_workers']:.2f} s)",
            s["cold_1_worker"] / s["cold_2_workers"],
            1.6,
            True,
        )
        ratio(f"200 packs x 50: 1 worker ({s['many_1_worker']:.2f} s) / 2 workers ({s['many_2_workers']:.2f} s)",
              s["many_1_worker"] / s["many_2_workers"], 1.6, True)  # fmt: skip
        rows.append({"what": "sync endpoint, 1-workflow pack, median", "value": round(s["api"]["median_ms"], 1),
                     "unit": "ms", "target": "< 30", "ok": s["api"]["median_ms"] < 30})  # fmt: skip
        rows.append({"what": "50 concurrent sync requests: errors", "value": s["api"]["concurrent_50_errors"],
                     "unit": "", "target": "0", "ok": s["api"]["concurrent_50_errors"] == 0})  # fmt: skip
        rows.append({"what": "worker peak RSS, 10,000-workflow sync", "value": round(s["worker_rss_peak_mb"], 1),
                     "unit": "MB", "target": "< 500", "ok": s["worker_rss_peak_mb"] < 500})  # fmt: skip
        rows.append({"what": "same result with 1 and 2 workers", "value": s["same_result_1_vs_2_workers"],
                     "unit": "", "target": "true", "ok": s["same_result_1_vs_2_workers"]})  # fmt: skip

    if not a.skip_sync and not a.skip_burst:
        detail["burst"] = [bench_burst.run(mode) for mode in ("server", "embedded")]
        for b in detail["burst"]:
            rows += burst_rows(b)

    if not a.skip_sync:
        detail["push"] = bench_sync.run_push(a.workflows)
        rows += push_rows(detail["push"])
        detail["tree"] = bench_sync.run_tree()
        rows += tree_rows(detail["tree"])

    report(rows, detail, started)


if __name__ == "__main__":
    main()
