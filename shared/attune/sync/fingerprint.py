"""A small pack's fingerprint: an unchanged pack's sync answers without reading its files.

A tree of thousands of small packs re-synced in bulk paid, per pack, what the sync of its
few files costs plus a fixed cost of reading its file cache row by row, checking every
call, merging nothing and reporting from the cache (issue 15). A pack of at most
``MAX_ENTRIES`` entries in its folders keeps, after each sync that leaves it settled, a
``pack_sync_state`` row: the fingerprint of its folders, the calls its files make that the
pack itself does not answer (with whether each resolved), and the result an unchanged
re-sync reports. The next sync that finds the same fingerprint, and the same answer to
each of those calls, returns that result and writes nothing, as the full path would have:

- the fingerprint covers what the full path's skip decision covers and more: the
  identity (inodes) of the pack directory and its folders, and every entry of
  ``workflows/``, ``actions/`` and ``actions/workflows/`` (name, mode, inode, size,
  modification and change times), with the settings and the code version that shape a
  check; a file edited in place, renamed, added, removed or made unreadable changes it;
- calls inside the pack resolve from its files (in the fingerprint); the others are asked
  of the registry again, in one query;
- a pack is "settled" only when an unchanged re-sync would read nothing: no file refused
  by the loader (those are read at every sync), none in ``actions/workflows/`` (read at
  every sync), no action whose ref another pack holds. Otherwise the state is dropped.

Only syncs write or drop the rows, in their own transaction; a pack's deletion drops its
row (foreign key). ``tests/e2e/test_pack_tree.py`` holds the results equal to those of the
full path for hostile trees.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import bindparam, text
from sqlmodel import Session

from attune import __version__
from attune.db import pipeline
from attune.db.pipeline import Pipeline
from attune.sync.models import STATUS_FILE_ERROR
from attune.sync.schemas import SyncResult, summarise, trusted_entry
from attune.workflows.loader import LINKED_FOLDER, _open_folder

MAX_ENTRIES = 1000  # larger packs gain little (their files dominate) and would store a large result
FOLDERS = ("workflows", "actions", "actions/workflows")
_VERSION = "1"  # bump when what a check depends on changes beyond the code version


def compute(root: Path, folders: str, *, max_file_size: int) -> str | None:
    """The fingerprint of the pack's folders; None when they hold more than ``MAX_ENTRIES``
    entries or one cannot be listed (the full path says why)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{_VERSION}\0{__version__}\0{max_file_size}\0{folders}\0".encode())
    h.update(os.fsencode(root))
    count = 0
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        for sub in FOLDERS:
            try:
                fd = _open_folder(root_fd, sub)
            except FileNotFoundError:
                h.update(b"\0-" + sub.encode())
                continue
            except OSError:
                return None
            entries = []
            try:
                with os.scandir(fd) as it:
                    for e in it:
                        st = e.stat(follow_symlinks=False)
                        entries.append(
                            f"{len(e.name)}:{e.name}:{st.st_mode}:{st.st_ino}:{st.st_size}:"
                            f"{st.st_mtime_ns}:{st.st_ctime_ns}"
                        )
                        count += 1
                        if count > MAX_ENTRIES:
                            return None
            except OSError:
                return None
            finally:
                os.close(fd)
            entries.sort()
            h.update(f"\0{sub}\0{len(entries)}\0".encode())
            h.update("\n".join(entries).encode("utf-8", "surrogateescape"))
    finally:
        os.close(root_fd)
    return h.hexdigest()


def settles(statuses: Iterable[int], listed: Iterable[str]) -> bool:
    """Whether an unchanged re-sync would read no file, from a sync's report statuses and
    listing: none refused by the loader (read at every sync) and none in actions/workflows/
    (read at every sync)."""
    linked = LINKED_FOLDER + "/"
    return all(s != STATUS_FILE_ERROR for s in statuses) and not any(p.startswith(linked) for p in listed)


def externals(deps: Iterable[str | None], local: Callable[[str], bool], known: Collection[str]) -> dict[str, bool]:
    """The calls of the pack's files (``deps``: each file's as JSON text) that its own files
    do not answer, and whether each resolved (to another pack's action or workflow, ``known``)."""
    refs: set[str] = set()
    for text_ in deps:
        refs.update(dep[2:] for dep in orjson.loads(text_ or "[]") or ())
    return {ref: ref in known for ref in refs if not local(ref)}


# -- the rows ------------------------------------------------------------------------------

_SETTLED = text("SELECT externals, CAST(result AS TEXT) FROM pack_sync_state WHERE pack_id = :p AND fingerprint = :f")
# On Postgres the same query also lets the transaction commit without waiting for the disk,
# for the row it returns (a replayed sync writes nothing but its job's status, which a
# redelivered job writes again after a crash): set_config(..., true) lasts until the
# transaction's end, and is undone at once when the replay does not happen.
_SETTLED_PG = text(
    "SELECT externals, CAST(result AS TEXT), set_config('synchronous_commit', 'off', true) FROM pack_sync_state "
    "WHERE pack_id = :p AND fingerprint = :f"
)
_DURABLE = text("SELECT set_config('synchronous_commit', 'on', true)")
_OUTSIDE = text(
    "SELECT ref FROM actions WHERE pack_id <> :p AND ref IN :refs "
    "UNION SELECT ref FROM workflow_definitions WHERE pack_id <> :p AND ref IN :refs"
).bindparams(bindparam("refs", expanding=True))
_SAVE = text(
    """
    INSERT INTO pack_sync_state (pack_id, fingerprint, externals, result, summary) VALUES (:p, :f, :e, :r, :s)
    ON CONFLICT (pack_id) DO UPDATE SET fingerprint = excluded.fingerprint, externals = excluded.externals,
                                        result = excluded.result, summary = excluded.summary
    """
)
_FORGET = text("DELETE FROM pack_sync_state WHERE pack_id = :p")


_STORED = text("SELECT pack_id, fingerprint, externals FROM pack_sync_state WHERE pack_id IN :packs").bindparams(
    bindparam("packs", expanding=True)
)
_OWNERS = text(
    "SELECT ref, pack_id FROM actions WHERE ref IN :refs UNION SELECT ref, pack_id FROM workflow_definitions "
    "WHERE ref IN :refs"
).bindparams(bindparam("refs", expanding=True))


@dataclass(frozen=True, slots=True)
class Stored:
    """A pack's stored state as a group task found it when it began (without the pack's
    lock: a hint of which packs may replay, checked again under the lock)."""

    fingerprint: str
    holds: bool  # whether every outside call resolved then as stored (the replay checks again)


def stored(session: Session, pack_ids: Iterable[int]) -> dict[int, Stored]:
    """pack id -> its stored state, of those of the packs that have one, with whether their
    outside calls resolve as stored (one query for the calls of every pack)."""
    wanted = sorted(set(pack_ids))
    rows: list[tuple[int, str, str]] = []
    for start in range(0, len(wanted), 500):
        rows += [(r[0], r[1], r[2]) for r in session.execute(_STORED, {"packs": wanted[start : start + 500]})]
    calls = {pack_id: orjson.loads(ext) for pack_id, _, ext in rows}
    refs = sorted({ref for ext in calls.values() for ref, _ in ext})
    owners: dict[str, set[int]] = {}
    for start in range(0, len(refs), 500):
        for ref, owner in session.execute(_OWNERS, {"refs": refs[start : start + 500]}):
            owners.setdefault(ref, set()).add(owner)

    def holds(pack_id: int) -> bool:
        found = {ref for ref, ids in owners.items() if any(o is not None and o != pack_id for o in ids)}
        return resolve_as_stored(calls[pack_id], found)

    return {pack_id: Stored(fp, holds(pack_id)) for pack_id, fp, _ in rows}


def resolve_as_stored(externals: Iterable[tuple[str, bool]], found: Collection[str]) -> bool:
    """Whether each stored outside call (ref, resolved) resolves as it did, ``found`` being the
    refs another pack registers now."""
    return all((ref in found) == resolved for ref, resolved in externals)


def outside(session: Session, pack_id: int, refs: Iterable[str]) -> set[str]:
    """Those of ``refs`` that another pack registered, as an action or a workflow (what a
    call the pack does not answer itself resolves to)."""
    wanted = sorted(set(refs))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # under SQLite's parameter limit
        batch = wanted[start : start + 500]
        found.update(session.execute(_OUTSIDE, {"p": pack_id, "refs": batch}).scalars())
    return found


def replay(session: Session, pack_id: int, fingerprint: str) -> SyncResult | None:
    """The stored result when the pack's fingerprint is the stored one and every outside
    call resolves as it did; None otherwise (the full path runs)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    row = session.execute(_SETTLED_PG if postgres else _SETTLED, {"p": pack_id, "f": fingerprint}).first()
    if row is None:
        return None
    externals = orjson.loads(row[0])
    if externals and not resolve_as_stored(externals, outside(session, pack_id, (ref for ref, _ in externals))):
        if postgres:
            session.execute(_DURABLE)  # the full path writes: its commit waits for the disk
        return None
    return SyncResult.model_validate_json(row[1])


def settled_result(result: SyncResult) -> SyncResult:
    """What an unchanged re-sync of the pack reports, from this sync's result: nothing
    created, changed or removed, every file unchanged (not read)."""
    workflows = [
        trusted_entry(
            ref=w.ref, created=False, workflow_def_id=w.workflow_def_id, diagnostics=w.diagnostics, changed=False
        )
        for w in result.workflows
    ]
    update = {"workflows": workflows, "removed": [], "unchanged_count": result.loaded_count, "job_id": None}
    return result.model_copy(update=update)


def save(
    session: Session,
    pack_id: int,
    fingerprint: str,
    externals: dict[str, bool],
    result: SyncResult,
    *,
    into: Pipeline | None = None,
) -> None:
    """Stores the pack's state; ``into``: queued there (sent with the job's last writes)."""
    e = orjson.dumps(sorted(externals.items())).decode()
    settled = settled_result(result)
    params = {"p": pack_id, "f": fingerprint, "e": e, "r": settled.model_dump_json(),
              "s": orjson.dumps(summarise(settled)).decode()}  # fmt: skip
    pipeline.execute(session, _SAVE, params, into)


def forget(session: Session, pack_id: int, *, into: Pipeline | None = None) -> None:
    pipeline.execute(session, _FORGET, {"p": pack_id}, into)
