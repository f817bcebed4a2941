"""The loader reads only regular files inside the pack, within the size limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attune.workflows.checker import check_pack
from attune.workflows.loader import PackDirectoryNotFound, content_hash, load_pack, load_pack_dir

WF = b'version: "1"\ntasks:\n  - name: a\n    action: p.act\n'


def make_pack(root: Path, ref: str = "p") -> Path:
    pack = root / ref
    (pack / "workflows").mkdir(parents=True)
    (pack / "actions").mkdir()
    (pack / "actions" / "act.yaml").write_bytes(b"runner_type: shell\n")
    return pack


def test_lists_yaml_and_yml_sorted_and_ignores_others(tmp_path):
    pack = make_pack(tmp_path)
    for name in ("b.yaml", "a.yml", "c.json", "README.md", "d.yaml.bak", ".hidden.txt"):
        (pack / "workflows" / name).write_bytes(WF)
    (pack / "workflows" / "dir.yaml").mkdir()
    files = load_pack(tmp_path, "p")
    assert [f.path for f in files.workflows] == ["workflows/a.yml", "workflows/b.yaml"]
    assert [f.ref for f in files.workflows] == ["p.a", "p.b"]
    assert files.workflows[0].content_hash == content_hash(WF)
    assert files.workflows[0].data == WF


def test_symlinks_are_never_followed(tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_bytes(b"version: 'TOP SECRET'\ntasks: []\n")
    pack = make_pack(tmp_path / "base")
    (pack / "workflows" / "ok.yaml").write_bytes(WF)
    os.symlink(secret, pack / "workflows" / "leak.yaml")
    files = load_pack(tmp_path / "base", "p")
    assert [f.name for f in files.workflows] == ["ok"]
    assert [n.code for n in files.notes] == ["symlink"]
    report = check_pack(files)
    assert "TOP SECRET" not in repr(report)


def test_symlinked_workflows_dir_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.yaml").write_bytes(WF)
    pack = tmp_path / "base" / "p"
    pack.mkdir(parents=True)
    os.symlink(outside, pack / "workflows")
    files = load_pack(tmp_path / "base", "p")
    assert files.workflows == []
    assert [n.code for n in files.notes] == ["unreadable"]


def test_symlinked_pack_dir_is_refused(tmp_path):
    real = make_pack(tmp_path / "elsewhere")
    (tmp_path / "base").mkdir()
    os.symlink(real, tmp_path / "base" / "p")
    with pytest.raises(PackDirectoryNotFound):
        load_pack(tmp_path / "base", "p")


def test_missing_pack_dir(tmp_path):
    with pytest.raises(PackDirectoryNotFound):
        load_pack(tmp_path, "nope")


@pytest.mark.parametrize("ref", ["..", "../etc", "/etc", "a/b", "", "A", "x" * 101, "a\x00b"])
def test_refs_that_could_escape_are_refused(tmp_path, ref):
    with pytest.raises(ValueError):
        load_pack(tmp_path, ref)


def test_file_over_the_size_limit(tmp_path):
    pack = make_pack(tmp_path)
    (pack / "workflows" / "big.yaml").write_bytes(b"# " + b"x" * 5000 + b"\n" + WF)
    (pack / "workflows" / "small.yaml").write_bytes(WF)
    files = load_pack_dir(pack, "p", max_file_size=1000)
    big = files.workflows[0]
    assert big.data is None
    assert big.problem is not None and big.problem.code == "file-too-large"
    report = check_pack(files)
    assert [w.ok for w in report.workflows] == [False, True]
    assert "larger than the limit of 1000 bytes" in report.workflows[0].diagnostics[0].message


def test_bad_file_names(tmp_path):
    pack = make_pack(tmp_path)
    (pack / "workflows" / "has space.yaml").write_bytes(WF)
    (pack / "workflows" / "dup.yaml").write_bytes(WF)
    (pack / "workflows" / "dup.yml").write_bytes(WF)
    report = check_pack(load_pack(tmp_path, "p"))
    by_file = {w.file: [d.code for d in w.diagnostics] for w in report.workflows}
    assert by_file == {
        "workflows/dup.yaml": [],
        "workflows/dup.yml": ["duplicate-ref"],
        "workflows/has space.yaml": ["invalid-name"],
    }


def test_fifo_is_skipped_without_hanging(tmp_path):
    pack = make_pack(tmp_path)
    os.mkfifo(pack / "workflows" / "pipe.yaml")
    (pack / "workflows" / "ok.yaml").write_bytes(WF)
    files = load_pack(tmp_path, "p")
    assert [f.name for f in files.workflows] == ["ok"]


def test_actions_from_pack_are_known(tmp_path):
    pack = make_pack(tmp_path)
    (pack / "workflows" / "w.yaml").write_bytes(WF)
    report = check_pack(load_pack(tmp_path, "p"))
    assert report.workflows[0].ok
    (pack / "actions" / "act.yaml").unlink()
    report = check_pack(load_pack(tmp_path, "p"))
    assert report.workflows[0].errors[0].message == "Task 'a' references undefined action 'p.act'"
    report = check_pack(load_pack(tmp_path, "p"), known_actions={"p.act"})
    assert report.workflows[0].ok


def test_many_tiny_files(tmp_path):
    pack = make_pack(tmp_path)
    for i in range(3000):
        (pack / "workflows" / f"w{i:05d}.yaml").write_bytes(WF)
    report = check_pack(load_pack(tmp_path, "p"))
    assert len(report.workflows) == 3000
    assert report.error_count == 0
