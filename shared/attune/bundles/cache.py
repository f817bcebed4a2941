"""Each worker's local copies of pushed versions, by sha256: fetched from the database,
unpacked under a temporary name and renamed into place (readers never see half a copy),
reused while present and holding the archive's files (names and sizes: a copy changed on
disk is unpacked again), least recently used removed past ``versions.cache_max_bytes``.

    <cache_dir>/<sha256>/        the unpacked archive (the pack at its root or in its folder)
    <cache_dir>/<sha256>.used    its unpacked size; its modification time is its last use
    <cache_dir>/.tmp-*           a copy being made (removed when older than an hour)

A copy used in the last ``IN_USE_SECONDS`` is never removed (a job may be reading it);
one removed under a sync anyway fails that sync, which changes nothing (the engine
checks its folders before it writes).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from attune.bundles import archive
from attune.bundles import repository as repo
from attune.bundles.models import PackVersion
from attune.config import Settings
from attune.errors import AttuneError

log = logging.getLogger(__name__)
IN_USE_SECONDS = 600
STALE_TMP_SECONDS = 3600


class VersionUnavailable(AttuneError):
    """The version's bytes are gone from the database or do not match their sha256."""

    status_code = 409


def limits_of(settings: Settings) -> archive.Limits:
    v = settings.versions
    return archive.Limits(max_entries=v.max_entries, max_unpacked_bytes=v.max_unpacked_bytes, max_ratio=v.max_ratio)


class CacheUnusable(AttuneError):
    """The worker's version cache directory cannot be written (a file in its place, no
    permission, a full disk): the job fails saying so, naming the directory."""

    status_code = 503


def materialise(session: Session, settings: Settings, version: PackVersion) -> Path:
    """The pack's directory in this worker's copy of the version (made if missing)."""
    base = settings.version_cache_dir
    try:
        return _materialise(session, settings, version, base)
    except OSError as exc:
        raise CacheUnusable(
            f"This worker's version cache ({base}, versions.cache_dir) cannot be used: "
            f"{exc.strerror or type(exc).__name__}{f' ({exc.filename})' if exc.filename else ''}"
        ) from exc


def _materialise(session: Session, settings: Settings, version: PackVersion, base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    final = base / version.sha256
    marker = base / f"{version.sha256}.used"
    root = final / version.prefix if version.prefix else final  # the pack's directory in the copy
    if final.is_dir() and not final.is_symlink() and marker.is_file():
        made = _made_of(marker)
        if made is not None and (not version.files or _intact(root, version.files, made)):
            os.utime(marker)
            return root
        log.warning("version cache: the copy of %s differs from its archive's files: unpacked again", version.sha256)
    if final.exists() or final.is_symlink():  # a copy changed, or one whose making stopped halfway
        _set_aside(base, final, marker)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    try:
        download = work / "archive"
        _fetch(session, version.sha256, download)
        tree = work / "tree"
        tree.mkdir()
        found, _ = archive.extract(download, tree, pack_ref=version.pack_ref, limits=limits_of(settings))
        # the marker first: another process never finds this copy in place without it (and
        # sets it aside as half made); a marker without its copy makes the copy again
        marker.write_text(f"{found.unpacked_bytes} {_newest_change(tree)}")
        try:
            os.rename(tree, final)
        except OSError:
            if not final.is_dir():  # not another process's copy of the same bytes
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    evict(base, settings.versions.cache_max_bytes, keep=version.sha256)
    return root


def _marker_parts(marker: Path) -> tuple[int, int | None]:
    """A marker's text: the copy's unpacked size, then the newest change time (ns) of its
    files when it was made (markers written before that had none)."""
    parts = marker.read_text().split()
    return int(parts[0]) if parts else 0, int(parts[1]) if len(parts) > 1 else None


def _made_of(marker: Path) -> int | None:
    try:
        return _marker_parts(marker)[1]
    except (OSError, ValueError):
        return None


def _newest_change(tree: Path) -> int:
    """The newest status change time (ns) of the files of a copy just made."""
    newest = 0
    for current, _, names in os.walk(tree):
        for name in names:
            newest = max(newest, os.lstat(os.path.join(current, name)).st_ctime_ns)
    return newest


def _intact(root: Path, files: list[list[Any]] | list[tuple[str, int]], made: int) -> bool:
    """Whether the copy holds the archive's files and only them, each a regular file of its
    size, none changed since the copy was made (``made``: the newest change time of its
    files then; any write, even one that keeps the size and puts the modification time
    back, moves a file's change time). A stat per file: about 20 ms for 10,000 files, where
    the sync that follows reads them all."""
    expected = {str(p): int(size) for p, size in files}
    seen = 0
    for current, dirs, names in os.walk(root):
        rel = os.path.relpath(current, root)
        prefix = "" if rel == "." else rel + "/"
        for d in dirs:
            if os.path.islink(os.path.join(current, d)):
                return False
        for name in names:
            try:
                st = os.lstat(os.path.join(current, name))
            except OSError:
                return False
            if not stat.S_ISREG(st.st_mode) or expected.get(prefix + name) != st.st_size or st.st_ctime_ns > made:
                return False
            seen += 1
    return seen == len(expected)


def _set_aside(base: Path, final: Path, marker: Path) -> None:
    """Removes a copy that is not to be used again: renamed away at once, then deleted."""
    marker.unlink(missing_ok=True)
    doomed = Path(tempfile.mkdtemp(prefix=".tmp-stale-", dir=base))
    with contextlib.suppress(OSError):
        os.rename(final, doomed / "tree")
    shutil.rmtree(doomed, ignore_errors=True)


def _fetch(session: Session, sha256: str, dest: Path) -> None:
    blob = repo.blob(session, sha256)
    if blob is None:
        raise VersionUnavailable(f"The archive {sha256} is no longer stored")
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for seq in range(blob.chunk_count):
            data = repo.chunk(session, sha256, seq)
            if data is None:
                raise VersionUnavailable(f"The archive {sha256} is missing its part {seq}")
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != sha256:
        raise VersionUnavailable(f"The stored archive {sha256} does not match its sha256")


def evict(base: Path, max_bytes: int, *, keep: str) -> list[str]:
    """Removes the least recently used copies until the rest fit in ``max_bytes``."""
    now = time.time()
    entries = []
    for marker in base.glob("*.used"):
        try:
            st = marker.stat()
            size = _marker_parts(marker)[0]
        except (OSError, ValueError):
            continue
        entries.append((st.st_mtime, marker.name[: -len(".used")], size))
    for tmp in base.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass
    total = sum(size for _, _, size in entries)
    removed = []
    for used_at, sha, size in sorted(entries):
        if total <= max_bytes:
            break
        if sha == keep or now - used_at < IN_USE_SECONDS:
            continue
        doomed = Path(tempfile.mkdtemp(prefix=".tmp-evict-", dir=base))
        with contextlib.suppress(OSError):
            os.rename(base / sha, doomed / "tree")  # gone from its name at once, then deleted
        (base / f"{sha}.used").unlink(missing_ok=True)
        shutil.rmtree(doomed, ignore_errors=True)
        total -= size
        removed.append(sha)
    if removed:
        log.info("version cache: removed %d least recently used copies", len(removed))
    return removed
