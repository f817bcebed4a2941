"""`attune pack push` builds its archive from the pack directory: .attuneignore (gitignore
syntax) honoured, links and .git/ left out, the same files giving the same bytes."""

from __future__ import annotations

import hashlib
import os
import tarfile
import warnings

from attune_cli.client.push import build_archive, ignored, pack_paths


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


def test_the_ignore_file_is_read_without_a_deprecation_warning(tmp_path):
    """pathspec's "gitwildmatch" style is deprecated: the gitignore one is used, silently."""
    (tmp_path / ".attuneignore").write_text("*.log\n!keep.log\nbuild/\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = ignored(tmp_path)
    assert spec.match_file("a/x.log") and not spec.match_file("keep.log") and spec.match_file("build/y")
    assert spec.match_file(".git/HEAD")
