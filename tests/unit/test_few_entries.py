"""``decide_fan_out`` answers a small pack without listing it (issue 15): a count of the
workflow folders' entries that is at most the chunk size means the listing (a part of
those entries) is too; anything it cannot count goes the listing's way. Hostile layouts:
entries that are not workflow files, folders that are files, links or missing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from attune.sync.engine import _few_entries
from attune.workflows.loader import list_workflow_files

NAMES = st.sampled_from(["a.yaml", "b.yml", "c.workflow.yaml", "d.txt", "e.json", ".hidden.yaml", "f.YAML", "g"])
FOLDER = st.one_of(
    st.just(None),  # missing
    st.just("file"),  # a regular file where the folder should be
    st.just("link"),  # a symbolic link to a directory of files
    st.lists(st.tuples(NAMES, st.integers(0, 9), st.booleans()), max_size=25),  # (name, copy, a directory?)
)


def _make(root: Path, sub: str, spec) -> None:
    path = root / sub
    if spec is None:
        return
    if spec == "file":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        return
    if spec == "link":
        target = root.parent / f"elsewhere-{sub.replace('/', '-')}"
        target.mkdir(parents=True, exist_ok=True)
        for i in range(5):
            (target / f"w{i}.yaml").write_text("x")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        return
    path.mkdir(parents=True, exist_ok=True)
    for name, copy, is_dir in spec:
        entry = path / f"{copy}{name}"
        if entry.exists():
            continue
        if is_dir:
            entry.mkdir()
        else:
            entry.write_text("x")


@settings(max_examples=150, deadline=None)
@given(workflows=FOLDER, linked=FOLDER, most=st.integers(0, 30))
def test_a_count_within_the_chunk_size_means_a_listing_within_it(workflows, linked, most: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        root.mkdir()
        _make(root, "workflows", workflows)
        _make(root, "actions/workflows", linked)
        if _few_entries(root, most):
            assert len(list_workflow_files(root) or []) <= most


def test_an_unreadable_folder_is_left_to_the_listing(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "workflows").mkdir(parents=True)
    (root / "workflows" / "a.yaml").write_text("x")
    assert _few_entries(root, 1) and not _few_entries(root, 0)
    assert _few_entries(tmp_path / "missing", 0)  # no pack directory: no files to split
    (root / "workflows").rename(root / "w2")
    (root / "workflows").write_text("not a directory")
    assert not _few_entries(root, 10)
