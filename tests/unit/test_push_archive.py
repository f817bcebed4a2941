"""`attune pack push` builds its archive from the pack directory: .attuneignore (gitignore
syntax) honoured, links and .git/ left out, the same files giving the same bytes."""

from __future__ import annotations

import hashlib
import os
import tarfile

from attune_cli.client.push import build_archive, pack_paths


def test_attuneignore_links_and_git_are_left_out(tmp_path):
    root = tmp_path / "p"
    (root / "workflows" / "drafts").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "pack.yaml").write_text("ref: p\n")
    (root / "workflows" / "a.yaml").write_text("a")
    (root / "workflows" / "drafts" / "b.yaml").write_text("b")
    (root / "workflows" / "keep.log").write_text("c")
    (root / "build.log").write_text("d")
    (root / ".attuneignore").write_text("# comment\n*.log\n!workflows/keep.log\ndrafts/\n")
    os.symlink("/etc/passwd", root / "workflows" / "link.yaml")
    assert sorted(pack_paths(root)) == [".attuneignore", "pack.yaml", "workflows/a.yaml", "workflows/keep.log"]


def test_the_archive_is_reproducible(tmp_path):
    root = tmp_path / "p"
    (root / "workflows").mkdir(parents=True)
    (root / "pack.yaml").write_text("ref: p\n")
    (root / "workflows" / "a.yaml").write_text("a")
    first, second = tmp_path / "1.tar.gz", tmp_path / "2.tar.gz"
    assert build_archive(root, first) == 2
    os.utime(root / "workflows" / "a.yaml", (1, 1))
    build_archive(root, second)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with tarfile.open(first) as tf:
        assert tf.getnames() == ["pack.yaml", "workflows/a.yaml"]
