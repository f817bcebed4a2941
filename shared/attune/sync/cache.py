"""What a sync may skip: the pack's file cache, which files changed, which calls resolve.

A file is not read again when its stat key (inode, size, mtime) is the cached one
and every call it makes (its deps) resolves as it did when it was checked.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlmodel import Session

from attune.sync import store
from attune.sync.store import CachedFile
from attune.workflows.loader import stat_key


class KnownRefs(Collection[str]):
    """Refs a task may call: the pack's own, else looked up once each in the database.

    Loading every ref of every other pack for each sync would cost more than the
    sync of a small pack; a pack calls few refs outside itself."""

    def __init__(self, local: Callable[[str], bool], remote: Callable[[str], bool]) -> None:
        self._local = local
        self._remote = remote
        self._cache: dict[str, bool] = {}

    def __contains__(self, ref: object) -> bool:
        if not isinstance(ref, str):
            return False
        hit = self._cache.get(ref)
        if hit is None:
            hit = self._cache[ref] = self._local(ref) or self._remote(ref)
        return hit

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, v in self._cache.items() if v)

    def __len__(self) -> int:
        return sum(self._cache.values())


@dataclass(slots=True)
class Resolver:
    """Answers whether calls resolve now, remembering the ones seen to resolve."""

    known_actions: Collection[str]
    known_workflows: Collection[str]
    _resolving: set[str] = field(default_factory=set)

    def still_resolves(self, deps_text: str, unresolved_text: str) -> bool:
        """Whether a cached file's calls (JSON text, see the validator's deps) resolve as they did."""
        deps = orjson.loads(deps_text)  # 3x json's speed: 10,000 of these per unchanged re-sync
        if unresolved_text == "[]" and self._resolving.issuperset(deps):
            return True  # the common case, at C speed
        now = self.unresolved(deps)
        self._resolving.update(d for d in deps if d not in now)
        return now == orjson.loads(unresolved_text)

    def unresolved(self, deps: list[str]) -> list[str]:
        """The calls (``a:<ref>`` or ``w:<ref>``) that do not resolve now."""
        out = []
        for dep in deps:
            kind, ref = dep[:2], dep[2:]
            if ref not in self.known_actions and (kind != "w:" or ref not in self.known_workflows):
                out.append(dep)
        return out


@dataclass(slots=True)
class Prefetched:
    """The cache and the stat keys of the unchanged regular files, as the fan-out decision
    found them: the whole-pack sync that follows reuses them (no second read, no second stat)."""

    cache: dict[str, CachedFile]
    stat_keys: dict[str, str]
    changed: int
    names: list[str]  # the pack's workflow files, as list_workflow_files gave them


def read_cache(session: Session, pack_id: int, paths: list[str] | None = None) -> dict[str, CachedFile]:
    """The pack's cached files (only those of ``paths``, workflow files' paths in the pack, when given)."""
    if paths is None:
        return store.cached_files_of_pack(session, pack_id)
    return store.cached_files(session, pack_id, paths)


def changed_files(session: Session, *, pack_id: int, pack_dir: Path, names: list[str]) -> Prefetched:
    """How many files a sync would have to read (their stat key is not the cached one),
    found with one stat per file (``names``: paths in the pack, as the loader lists them)."""
    cache = store.cached_files_of_pack(session, pack_id)
    changed = 0
    keys: dict[str, str] = {}
    dir_fd = os.open(pack_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in names:
            c = cache.get(name)
            if c is None:
                changed += 1
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                changed += 1
                continue
            key = stat_key(st)
            if c.stat == key and stat.S_ISREG(st.st_mode):
                keys[name] = key
            else:
                changed += 1
    finally:
        os.close(dir_fd)
    return Prefetched(cache, keys, changed, names)
