"""`make bench`'s floor, and the same floor with Python's garbage collector paused during its
parse (README, "Two floors"): both reported, the collector always turned back on, and the
paused floor's rows shown without a target."""

from __future__ import annotations

import gc
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import workflow_yaml

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module(name: str, file: str) -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # bench_sync imports its neighbours by name
    spec = importlib.util.spec_from_file_location(name, BENCH / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench_sync(configured: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    db = configured["ATTUNE__DATABASE__URL"]
    if not db.startswith("postgresql"):
        pytest.skip("the floor COPYs into Postgres")
    module = _module("bench_sync_under_test", "bench_sync.py")
    monkeypatch.setattr(module, "PG", db)
    return module


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    folder = tmp_path / "floorpack" / "workflows"
    folder.mkdir(parents=True)
    for i in range(12):
        (folder / f"w{i}.yaml").write_text(workflow_yaml(f"floorpack.echo{i}"))
    (folder / "broken.yaml").write_text("tasks: [\n")  # parsed as None, as the floor does
    return tmp_path / "floorpack"


def test_the_floor_also_times_its_parse_with_the_collector_paused(bench_sync: Any, pack: Path) -> None:
    assert gc.isenabled()
    f = bench_sync.floor(pack)
    assert {"read", "parse", "copy", "total", "parse_lean", "lean"} <= set(f)
    assert f["total"] == pytest.approx(f["read"] + f["parse"] + f["copy"])
    assert f["lean"] == pytest.approx(f["read"] + f["parse_lean"] + f["copy"])
    assert f["parse_lean"] > 0
    assert gc.isenabled()


def test_the_collector_is_turned_back_on_when_the_paused_parse_fails(
    bench_sync: Any, pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bench_sync._parse_all

    def parse(blobs: list[bytes]) -> list[Any]:
        if not gc.isenabled():
            raise MemoryError("the paused parse fails")
        return real(blobs)

    monkeypatch.setattr(bench_sync, "_parse_all", parse)
    with pytest.raises(MemoryError):
        bench_sync.floor(pack)
    assert gc.isenabled()


def test_the_paused_floor_is_shown_beside_the_tree_floor_without_a_target() -> None:
    run = _module("bench_run_under_test", "run.py")
    floor = {"read": 0.5, "parse": 12.0, "copy": 4.0, "total": 16.5, "parse_lean": 6.0, "lean": 10.5}
    tree = {"floor": floor, "cold": 16.8, "unchanged": 1.0, "packs": 2000, "per_pack": 20, "workers": 2,
            "files": 40000, "cold_cpu_ms_per_pack": 10.0, "unchanged_cpu_ms_per_pack": 0.4}  # fmt: skip
    rows = run.tree_rows(tree)
    paused = [r for r in rows if "collector paused" in r["what"] or "that floor" in r["what"]]
    assert [r["value"] for r in paused] == [10.5, 1.6]
    assert all(r["target"] == "" and r["ok"] for r in paused)
    targeted = {r["what"].split(" (")[0]: r["value"] for r in rows if r["target"]}
    # the targets stay against the floor the issues set them on
    assert targeted == {"2000 packs x 20, 2 workers: cold bulk sync": round(16.8 / 16.5, 3),
                        "2000 packs x 20, 2 workers: unchanged bulk re-sync": round(1.0 / 16.5, 3)}  # fmt: skip


def test_the_tree_is_shown_against_one_pack_of_as_many_workflows_without_a_target() -> None:
    """Issue 15's title ("as cheap per workflow as one big pack"): the one pack's cold sync
    against the tree's floor, and the tree's cold bulk sync against it, both without a
    target; a result of an earlier run (no such measure) still reports its rows."""
    run = _module("bench_run_under_test", "run.py")
    floor = {"read": 0.5, "parse": 12.0, "copy": 4.0, "total": 16.0, "parse_lean": 6.0, "lean": 10.5}
    tree = {"floor": floor, "cold": 20.0, "unchanged": 1.0, "packs": 2000, "per_pack": 20, "workers": 2,
            "files": 40000, "cold_cpu_ms_per_pack": 10.0, "unchanged_cpu_ms_per_pack": 0.4}  # fmt: skip
    before = run.tree_rows(tree)
    assert not [r for r in before if "one pack" in r["what"]]
    rows = run.tree_rows({**tree, "one_pack_cold": 16.0})
    one = [r for r in rows if "one pack" in r["what"]]
    assert [(r["value"], r["unit"], r["target"], r["ok"]) for r in one] == [(1.0, "x", "", True), (1.25, "x", "", True)]
    assert "(16.00 s)" in one[0]["what"]
    assert [r for r in rows if r["target"]] == [r for r in before if r["target"]]
