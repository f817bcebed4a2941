"""A whole-pack sync's writes, once its read files are staged: forget the cached files no
longer listed, note the definitions that stay the same, write the revisions, merge, cache,
report, register the pack's actions, drop the staging rows.

On Postgres these statements go to the server together (``db/pipeline.py``: one round trip
for all of them, each as it would run alone, in order, in the sync's transaction); a cold
small pack's sync made ten round trips here, each with SQLAlchemy's execution around it.
Elsewhere (SQLite) they run one by one. Both run the same SQL (``sync/store.py``,
``sync/history.py``, ``actions/repository.py``); tests/unit/test_engine.py runs every
sync case on both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from attune.actions import repository as actions_repo
from attune.db.pipeline import Pipeline
from attune.sync import history, store
from attune.workflows.checker import ActionResult
from attune.workflows.registrar import register_actions, register_params


@dataclass(frozen=True, slots=True)
class Writes:
    """What the sync writes: whether cached files are to be forgotten (``listed``: the files
    listed), whether files were staged, whether unchanged ones are reported from the cache."""

    job_id: uuid.UUID
    pack_id: int
    listed: Sequence[str]
    forget: bool
    staged: bool
    cached_report: bool


@dataclass(frozen=True, slots=True)
class Written:
    same: set[str]  # refs read again whose stored definition and warnings stay as they were
    removed: list[str]  # workflows removed (sorted)
    created: set[str]  # workflows the merge inserted
    staged_report: list[Any]  # report rows of the staged files, in listing order
    cached_report: dict[str, Any]  # source file -> report row, of the unchanged files
    taken: set[str]  # action refs another pack holds (not registered): none, the actions are the files'


def write(session: Session, w: Writes, stamp: history.Stamp, actions: Sequence[ActionResult]) -> Written:
    if session.get_bind().dialect.name == "postgresql":
        return _pipelined(session, w, stamp, actions)
    return _one_by_one(session, w, stamp, actions)


def _one_by_one(session: Session, w: Writes, stamp: history.Stamp, actions: Sequence[ActionResult]) -> Written:
    if w.forget:
        store.forget_unlisted(session, job_id=w.job_id, pack_id=w.pack_id, listed=w.listed)
    same: set[str] = set()
    if w.staged:  # only the files read can bring a new definition
        same = store.identical_refs(session, job_id=w.job_id, pack_id=w.pack_id)
        history.record(session, stamp)
    removed, created = store.merge_read(session, job_id=w.job_id, pack_id=w.pack_id, now=stamp.now)
    staged = store.report_rows(session, w.job_id) if w.staged else []
    cached = store.report_cached(session, w.pack_id) if w.cached_report else {}
    taken = register_actions(session, w.pack_id, actions, stamp.now)
    store.drop_staged(session, w.job_id)  # a job split into chunks never comes here
    return Written(same, removed, created, staged, cached, taken)


def _pipelined(session: Session, w: Writes, stamp: history.Stamp, actions: Sequence[ActionResult]) -> Written:
    p = Pipeline(session)
    ids = {"job_id": w.job_id, "pack_id": w.pack_id}
    if w.forget:
        p.add(store.FORGET_PG, {**ids, "listed": list(w.listed)})
    same = p.add(store.IDENTICAL, ids) if w.staged else None
    if w.staged:
        p.add(history.RECORD, history.stamp_params(stamp))
    merged = p.add(store.MERGE_PG, {**ids, "now": stamp.now})
    removed = p.add(store.REMOVE_READ, ids)
    p.add(store.CACHE, ids)
    staged = p.add(store.REPORT, {"job_id": w.job_id}) if w.staged else None
    cached = p.add(store.CACHED_REPORT, {"pack_id": w.pack_id}) if w.cached_report else None
    taken = p.add(actions_repo.REGISTER_PG, register_params(w.pack_id, actions, stamp.now))
    p.add(store.DROP_STAGED, {"job_id": w.job_id})
    rows = p.run()
    return Written(
        same={r for (r,) in rows[same]} if same is not None else set(),
        removed=sorted(r for (r,) in rows[removed]),
        created={ref for ref, inserted in rows[merged] if inserted},
        staged_report=rows[staged] if staged is not None else [],
        cached_report={r[0]: r[1:] for r in rows[cached]} if cached is not None else {},
        taken={r for (r,) in rows[taken]},
    )
