"""`attune pack push` builds its archive from the pack directory: .attuneignore (gitignore
syntax) honoured, links and .git/ left out, the same files giving the same bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attune_cli.client.push import Unpushable, build_archive, ignored, pack_paths


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


def test_the_ignore_file_reads_comments_escapes_and_negations(tmp_path):
    (tmp_path / ".attuneignore").write_text("# a comment\n*.log\n!keep.log\nbuild/\n\\#hash\n")
    ignore = ignored(tmp_path)
    assert ignore.leaves_out("a/x.log", folder=False) and not ignore.leaves_out("keep.log", folder=False)
    assert ignore.leaves_out("build", folder=True) and not ignore.leaves_out("build", folder=False)
    assert ignore.leaves_out("#hash", folder=False) and not ignore.leaves_out("# a comment", folder=False)


# .attuneignore files and what `git ls-files --others --exclude-standard` keeps with the same
# lines as a .gitignore (found from outside: the allow-list below pushed pack.yaml alone)
IGNORE_CASES = [
    ["*", "!pack.yaml", "!workflows/", "!workflows/*", "!actions/", "!actions/*"],
    ["*", "!*/", "!*.yaml"],
    ["*", "!workflows/"],
    ["build/", "!build/keep.txt"],
    ["*.log", "!important.log"],
    ["docs", "workflows/draft_*"],
    ["/tmp/", "**/cache/"],
    ["actions/workflows/"],
    ["workflows/*", "!workflows/a.yaml"],
    ["sub/", "!sub/cache/"],
    ["/*", "!/workflows/", "!/pack.yaml"],
    ["workflows", "!workflows/a.yaml"],
    # a second round from outside: pathspec's folder patterns also matched the folder's
    # contents, and 'x/**' the folder itself (the first two pushed no workflow at all)
    ["workflows/**", "!workflows/*.yaml"],
    ["workflows/**", "!workflows/**/*.yaml"],
    ["*/**", "!*/*.yaml"],
    ["docs/**", "!docs/**/keep.md"],
    ["*/", "!workflows/"],
    ["**/", "!workflows/"],
    ["workflows/**", "!workflows/sub/"],
    ["*", "!**/", "!**/*.yaml"],
    ["\\#hash.yaml", "x\\[1\\].yaml", "trail\\ .yaml"],
]
TREE = ["pack.yaml", "workflows/a.yaml", "workflows/draft_b.yaml", "actions/x.yaml", "actions/workflows/c.yaml",
        "build/keep.txt", "build/out.o", "x.log", "important.log", "docs/readme.md", "tmp/t", "sub/tmp/t2",
        "sub/cache/z", "other.txt", "workflows/sub/deep.yaml", "workflows/tmp/x.yaml", "docs/keep.md",
        "docs/sub/keep.md", "#hash.yaml", "x[1].yaml", "trail .yaml", ".hidden"]  # fmt: skip


def pushed_and_kept_by_git(root, lines: list[str]) -> tuple[list[str], list[str]]:
    """TREE under ``root`` with ``lines`` as its .attuneignore and .gitignore: what the push
    archives, and what `git ls-files --others --exclude-standard` keeps."""
    for name in TREE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    (root / ".attuneignore").write_text("\n".join(lines) + "\n")
    (root / ".gitignore").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted(set(pack_paths(root)) - {".gitignore"}), sorted(set(listed) - {".gitignore", ""})


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("lines", IGNORE_CASES, ids=[" ".join(c) for c in IGNORE_CASES])
def test_attuneignore_keeps_what_git_keeps(tmp_path, lines):
    ours, git = pushed_and_kept_by_git(tmp_path / "p", lines)
    assert ours == git


@pytest.mark.parametrize("folder", ["workflows", "actions", "actions/workflows"])
def test_a_linked_pack_folder_refuses_the_push(tmp_path, folder):
    """Left out of the archive (as links are), a linked workflows/ made a version without
    workflows, whose activation removed every workflow of the pack (exit 0)."""
    root, real = tmp_path / "p", tmp_path / "real"
    (root / "actions").mkdir(parents=True)
    (root / "pack.yaml").write_text("ref: p\n")
    real.mkdir()
    (real / "a.yaml").write_text("a")
    if (root / folder).exists():
        (root / folder).rmdir()
    os.symlink(real, root / folder)
    with pytest.raises(Unpushable, match=f"'{folder}/' is a symbolic link"):
        list(pack_paths(root))


def test_another_linked_folder_is_left_out(tmp_path):
    root = tmp_path / "p"
    (root / "workflows").mkdir(parents=True)
    (root / "pack.yaml").write_text("ref: p\n")
    (root / "workflows" / "a.yaml").write_text("a")
    os.symlink(root / "workflows", root / "docs")
    assert sorted(pack_paths(root)) == ["pack.yaml", "workflows/a.yaml"]


def test_an_ignore_file_that_is_not_utf8_is_a_usage_error(tmp_path):
    (tmp_path / ".attuneignore").write_bytes(b"caf\xe9\n")
    with pytest.raises(Unpushable, match="not UTF-8"):
        list(pack_paths(tmp_path))


IGNORE_PART = st.sampled_from(
    [
        "*",
        "**",
        "workflows",
        "docs",
        "sub",
        "actions",
        "*.yaml",
        "keep.md",
        "cache",
        "?ub",
        "[ds]*",
        ".*",
        "tmp",
        "[!a]*",
        "\\*",
        "work*",
        "*s",
        "**x",
        "#",
        "\\#h",
        "[a-z]*",
    ]
)
IGNORE_LINE = st.builds(
    lambda negated, rooted, parts, folder: ("!" if negated else "") + ("/" if rooted else "") + "/".join(parts)
    + ("/" if folder else ""),
    st.booleans(), st.booleans(), st.lists(IGNORE_PART, min_size=1, max_size=3), st.booleans(),
)  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@settings(max_examples=int(os.environ.get("ATTUNE_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(lines=st.lists(IGNORE_LINE, min_size=1, max_size=4))
def test_any_attuneignore_keeps_what_git_keeps(tmp_path_factory, lines):
    """Generated ignore files against git itself (2,000 examples agreed when written)."""
    ours, git = pushed_and_kept_by_git(tmp_path_factory.mktemp("p"), lines)
    assert ours == git, lines
