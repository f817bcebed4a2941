"""Issue 17, item 3: each worker's cache of pushed versions. Copies are keyed by sha256,
made under a temporary name and renamed into place (never seen half made), reused while
present, and bounded in size: the least recently used go first, a copy in use never.

The bytes come from a real SQLite database (the embedded mode's store); "in use" and
"least recently used" are the markers' modification times, set here, not waited for."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import Session, SQLModel, create_engine

from attune.bundles import cache
from attune.bundles import repository as repo
from attune.bundles.models import PackBlob, PackBlobChunk, PackVersion
from attune.config import Settings, VersionsSettings
from tests.archives import pack_files, tar_gz

MIB = 1024 * 1024
HOUR = 3600


@pytest.fixture
def session(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    tables = [PackBlob.__table__, PackBlobChunk.__table__]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(engine, tables=tables)
    with Session(engine) as s:
        yield s
    engine.dispose()


def settings_for(base: Path, max_bytes: int = 64 * MIB) -> Settings:
    return Settings(versions=VersionsSettings(cache_dir=base, cache_max_bytes=max_bytes))


def stored(session: Session, ref: str, payload: int = 0, *, seed: str = "") -> PackVersion:
    """A version of ``ref`` whose archive is in the database (``payload`` bytes of noise
    beside the pack's files, so that its copy has a size that counts)."""
    files = pack_files(ref, {"deploy.yaml": f'version: "1.0"\ndescription: {ref}{seed}\ntasks: []\n'})
    if payload:
        files["blob.bin"] = os.urandom(payload)
    body = tar_gz(files)
    sha = hashlib.sha256(body).hexdigest()
    repo.store_blob(session, sha256=sha, size=len(body), content=io.BytesIO(body))
    session.commit()
    sizes = [[name, len(data.encode() if isinstance(data, str) else data)] for name, data in sorted(files.items())]
    return PackVersion(pack_id=1, pack_ref=ref, sha256=sha, size=len(body), format="tar.gz", file_count=len(files),
                       unpacked_size=0, prefix="", files=sizes)  # fmt: skip


def used_ago(base: Path, sha: str, seconds: float) -> None:
    """The copy's last use, ``seconds`` ago."""
    t = time.time() - seconds
    os.utime(base / f"{sha}.used", (t, t))


def listing(base: Path) -> set[str]:
    return {p.name for p in base.iterdir()}


def test_a_copy_is_made_once_then_reused_from_disk(session, tmp_path):
    base = tmp_path / "cache"
    settings = settings_for(base)
    v = stored(session, "p")
    root = cache.materialise(session, settings, v)
    assert root == base / v.sha256 and (root / "pack.yaml").is_file()
    assert listing(base) == {v.sha256, f"{v.sha256}.used"}  # nothing left under a temporary name
    size, made = (int(x) for x in (base / f"{v.sha256}.used").read_text().split())
    assert size > 0 and made > 0  # its unpacked size, and its files' newest change time then
    # gone from the database: the copy on disk serves, and its use is recorded
    session.execute(delete(PackBlobChunk))
    session.execute(delete(PackBlob))
    session.commit()
    used_ago(base, v.sha256, HOUR)
    assert cache.materialise(session, settings, v) == root
    assert time.time() - (base / f"{v.sha256}.used").stat().st_mtime < HOUR / 2


def test_a_copy_that_cannot_be_made_leaves_nothing_under_its_name(session, tmp_path):
    """Bytes that do not match their sha256 (or are gone): no half copy, no temporary left."""
    base = tmp_path / "cache"
    v = stored(session, "p")
    chunk = session.get(PackBlobChunk, (v.sha256, 0))
    assert chunk is not None
    chunk.data = chunk.data[:-1] + bytes([chunk.data[-1] ^ 1])
    session.commit()
    with pytest.raises(cache.VersionUnavailable, match="does not match"):
        cache.materialise(session, settings_for(base), v)
    assert listing(base) == set()
    missing = v.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(cache.VersionUnavailable, match="no longer stored"):
        cache.materialise(session, settings_for(base), missing)
    assert listing(base) == set()


def test_a_copy_without_its_marker_is_made_again_and_kept_by_rename(session, tmp_path):
    """A directory under the sha's name without its marker (another process renamed it in,
    or a crash came between rename and marker) is not trusted half made: the copy is made
    again, the rename finds the name taken by a whole copy and keeps it."""
    base = tmp_path / "cache"
    v = stored(session, "p")
    root = cache.materialise(session, settings_for(base), v)
    (base / f"{v.sha256}.used").unlink()
    assert cache.materialise(session, settings_for(base), v) == root
    assert (root / "workflows" / "deploy.yaml").is_file()
    assert listing(base) == {v.sha256, f"{v.sha256}.used"}


def test_least_recently_used_copies_go_first_until_the_rest_fit(session, tmp_path):
    base = tmp_path / "cache"
    settings = settings_for(base)
    old, middle, recent = (stored(session, f"p{n}", 300_000) for n in range(3))
    for v, ago in ((old, 3 * HOUR), (middle, 2 * HOUR), (recent, HOUR)):
        cache.materialise(session, settings, v)
        used_ago(base, v.sha256, ago)
    sizes = {v.sha256: int((base / f"{v.sha256}.used").read_text().split()[0]) for v in (old, middle, recent)}
    assert all(size > 300_000 for size in sizes.values())
    # room for two: the least recently used goes, renamed away then deleted
    assert cache.evict(base, sizes[middle.sha256] + sizes[recent.sha256], keep="") == [old.sha256]
    assert listing(base) == {middle.sha256, f"{middle.sha256}.used", recent.sha256, f"{recent.sha256}.used"}
    # room for one, the one kept being the oldest: the others go, it stays
    assert cache.evict(base, sizes[middle.sha256], keep=middle.sha256) == [recent.sha256]
    assert listing(base) == {middle.sha256, f"{middle.sha256}.used"}
    assert cache.evict(base, 10**12, keep="") == []  # within the bound: nothing removed


def test_a_copy_in_use_is_not_evicted_even_past_the_bound(session, tmp_path):
    base = tmp_path / "cache"
    settings = settings_for(base)
    idle, busy = stored(session, "idle", 300_000), stored(session, "busy", 300_000)
    for v in (idle, busy):
        cache.materialise(session, settings, v)
    used_ago(base, idle.sha256, cache.IN_USE_SECONDS + HOUR)
    used_ago(base, busy.sha256, cache.IN_USE_SECONDS + 2 * HOUR)
    os.utime(base / f"{busy.sha256}.used")  # a job read it just now: in use
    assert cache.evict(base, 1, keep="") == [idle.sha256]  # nothing fits: all but the copy in use go
    assert (base / busy.sha256 / "pack.yaml").is_file()
    assert listing(base) == {busy.sha256, f"{busy.sha256}.used"}


def test_the_bound_applies_as_copies_are_made(session, tmp_path):
    """materialise evicts after each new copy: the cache stays within cache_max_bytes
    (1 MiB here), the copy just made and those in use excepted."""
    base = tmp_path / "cache"
    settings = settings_for(base, max_bytes=MIB)
    versions = [stored(session, f"p{n}", 400_000) for n in range(4)]
    for n, v in enumerate(versions):
        cache.materialise(session, settings, v)
        used_ago(base, v.sha256, cache.IN_USE_SECONDS + (10 - n) * HOUR)  # older copies used longer ago
    kept = {name for name in listing(base) if not name.endswith(".used")}
    assert kept == {versions[2].sha256, versions[3].sha256}
    assert sum(int((base / f"{sha}.used").read_text().split()[0]) for sha in kept) <= MIB
    # the evicted one comes back from the database when asked for again, the LRU going
    again = cache.materialise(session, settings, versions[0])
    assert (again / "blob.bin").stat().st_size == 400_000
    assert versions[2].sha256 not in listing(base)


def test_stale_temporary_copies_are_swept_fresh_ones_kept(tmp_path):
    """A copy being made (.tmp-*) is left alone; one older than an hour (its process died) goes."""
    base = tmp_path / "cache"
    (base / ".tmp-fresh").mkdir(parents=True)
    (base / ".tmp-stale").mkdir()
    t = time.time() - cache.STALE_TMP_SECONDS - HOUR
    os.utime(base / ".tmp-stale", (t, t))
    cache.evict(base, MIB, keep="")
    assert listing(base) == {".tmp-fresh"}


@pytest.mark.parametrize("change", ["removed", "added", "resized", "linked", "same size", "same size and time"])
def test_a_copy_changed_on_disk_is_unpacked_again(session, tmp_path, change):
    """Found from outside: a file deleted from a cached copy made the next sync of the pack
    remove that workflow, and an edited copy was registered as the version (its archive
    unchanged). A copy whose files differ from the archive's (names, sizes), or changed
    since it was made (their change times), is set aside."""
    base = tmp_path / "cache"
    settings = settings_for(base)
    v = stored(session, "p")
    root = cache.materialise(session, settings, v)
    target = root / "workflows" / "deploy.yaml"
    original = target.read_bytes()
    if change == "removed":
        target.unlink()
    elif change == "added":
        (root / "workflows" / "extra.yaml").write_text("version: '1'\n")
    elif change == "resized":
        target.write_bytes(original + b"# more\n")
    elif change in ("same size", "same size and time"):  # (left alone last stop: it was reused)
        before = target.stat()
        time.sleep(0.02)  # past the file system's clock tick
        target.write_bytes(original.replace(b"a", b"b", 1) if b"a" in original else original[::-1])
        assert target.stat().st_size == before.st_size and target.read_bytes() != original
        if change == "same size and time":
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        target.unlink()
        os.symlink("/etc/hostname", target)
    again = cache.materialise(session, settings, v)
    assert again == root and target.read_bytes() == original and not target.is_symlink()
    assert not (root / "workflows" / "extra.yaml").exists()
    assert listing(base) == {v.sha256, f"{v.sha256}.used"}


def test_a_copy_without_its_marker_is_made_again(session, tmp_path):
    """A copy whose making stopped before its marker was written (a worker killed) was
    reused as it was, whatever it held."""
    base = tmp_path / "cache"
    settings = settings_for(base)
    v = stored(session, "p")
    root = cache.materialise(session, settings, v)
    (base / f"{v.sha256}.used").unlink()
    (root / "workflows" / "deploy.yaml").write_text("half: written\n")
    cache.materialise(session, settings, v)
    assert "half" not in (root / "workflows" / "deploy.yaml").read_text()


def test_an_unusable_cache_directory_is_named(session, tmp_path):
    base = tmp_path / "cache"
    base.write_text("a file where the cache should be")
    with pytest.raises(cache.CacheUnusable, match=r"version cache \(.*cache, versions.cache_dir\) cannot be used"):
        cache.materialise(session, settings_for(base), stored(session, "p"))


def test_a_copy_whose_marker_predates_change_times_is_made_again(session, tmp_path):
    """A marker written before change times were recorded (its unpacked size alone): the
    copy cannot be checked for edits that keep every size, so it is unpacked once more."""
    base = tmp_path / "cache"
    settings = settings_for(base)
    v = stored(session, "p")
    root = cache.materialise(session, settings, v)
    marker = base / f"{v.sha256}.used"
    marker.write_text(marker.read_text().split()[0])
    target = root / "workflows" / "deploy.yaml"
    original = target.read_bytes()
    target.write_bytes(b"#" * len(original))  # every size kept
    assert cache.materialise(session, settings, v) == root
    assert target.read_bytes() == original
    assert len(marker.read_text().split()) == 2
