"""A bulk sync's unchanged packs, finished on Postgres in one round trip for a run of them
(issue 15).

``sync.fingerprint.replay`` answers an unchanged small pack's sync from its stored state.
Through the ORM the transaction around it (lock, state, job row, lease, commit) cost about
1 ms of a worker's CPU per pack, and each round trip to the server a wait: a tree of 2,000
unchanged packs spent most of its re-sync there. Here a group's consecutive unchanged packs
go to the server together, in pipeline mode on the driver's connection, each in its own
transaction:

    BEGIN
    SELECT the pack's lock (and a commit that does not wait for the disk: the job's row is
           all the transaction writes, and a redelivered job writes it again after a crash)
    WITH the stored state, when it has this fingerprint and every outside call resolves as
         it did (read after the lock is held: its own statement, its own snapshot)
         UPDATE the job's row from queued to succeeded with the stored result (started and
         finished now, one more attempt), DELETE its lease; RETURNING the summary
    COMMIT

A pack whose state does not hold commits nothing but its lock's release (no row comes
back) and takes the full path. Nothing else differs from the ORM path
(``tests/e2e/test_pack_tree.py`` and ``tests/unit/test_fingerprint.py`` compare them).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from psycopg import pq
from sqlalchemy import Connection

from attune.db.types import utcnow
from attune.sync.store import LOCK_NAMESPACE

_LOCK = "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(%s, %s)"
# the outside calls as fingerprint.resolve_as_stored checks them: each stored (ref, resolved)
# must still be resolved exactly when another pack registers that ref as an action or workflow
_FINISH = """
WITH s AS (
    SELECT st.result AS r, st.summary FROM pack_sync_state st
    WHERE st.pack_id = %(pack)s AND st.fingerprint = %(fp)s AND NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(st.externals::jsonb) AS e(v)
        WHERE (e.v ->> 1)::boolean IS DISTINCT FROM (
            EXISTS (SELECT 1 FROM actions a WHERE a.ref = e.v ->> 0 AND a.pack_id <> %(pack)s)
            OR EXISTS (SELECT 1 FROM workflow_definitions w WHERE w.ref = e.v ->> 0 AND w.pack_id <> %(pack)s)
        )
    )
), u AS (
    UPDATE jobs SET status = 'succeeded', result = jsonb_set(s.r, '{job_id}', to_jsonb(%(job_text)s::text)),
        summary = s.summary, started_at = %(now)s, finished_at = %(now)s, error = NULL,
        attempts = jobs.attempts + 1,
        progress_done = (s.r ->> 'loaded_count')::int, progress_total = (s.r ->> 'loaded_count')::int
    FROM s WHERE jobs.id = %(job)s
    RETURNING s.summary::text AS summary
), d AS (
    DELETE FROM job_leases WHERE job_id = %(job)s AND task = %(task)s AND EXISTS (SELECT 1 FROM u)
)
SELECT summary FROM u
"""


@contextlib.contextmanager
def _own_transactions(conn: Connection) -> Iterator[Any]:
    """The driver's connection under ``conn``, in autocommit (the statements sent bring their
    own BEGIN .. COMMIT) and in pipeline mode; a transaction an error left open is rolled
    back, and a connection that cannot be put back as it was is invalidated."""
    assert not conn.in_transaction()
    raw: Any = conn.connection.driver_connection
    raw.autocommit = True
    try:
        with raw.pipeline():
            yield raw
    except BaseException:
        with contextlib.suppress(Exception):
            if raw.info.transaction_status != pq.TransactionStatus.IDLE:  # a transaction the error left open
                raw.execute("ROLLBACK")
        raise
    finally:
        try:
            raw.autocommit = False
        except Exception:  # the connection is broken: never back in the pool as it is
            conn.invalidate()


def replay_many(
    conn: Connection, items: Sequence[tuple[uuid.UUID, int, str]], *, task: str
) -> list[dict[str, Any] | None]:
    """For each (job id, pack id, fingerprint now): the job finished with its pack's stored
    result, committed, when the stored state has this fingerprint and every outside call
    resolves as it did: the job's summary; None when it does not apply (nothing written).
    Each pack in its own transaction, all of them in one round trip."""
    now = utcnow()
    cursors = []
    with _own_transactions(conn) as raw:
        for job_id, pack_id, fp in items:
            cur = raw.cursor()
            raw.execute("BEGIN")
            raw.execute(_LOCK, (LOCK_NAMESPACE, pack_id))
            cur.execute(_FINISH, {"pack": pack_id, "fp": fp, "job": job_id, "job_text": str(job_id),
                                  "now": now, "task": task})  # fmt: skip
            raw.execute("COMMIT")
            cursors.append(cur)
    out: list[dict[str, Any] | None] = []
    for cur in cursors:
        row = cur.fetchone()
        out.append(None if row is None else orjson.loads(row[0]))
        cur.close()
    return out


_RUNNING = (
    "UPDATE jobs SET status = 'running', started_at = %s, finished_at = NULL, error = NULL, "
    "attempts = attempts + 1 WHERE id = %s"
)


def mark_running(conn: Connection, job_id: uuid.UUID) -> None:
    """``jobs.service.mark_running_many`` of one job in one round trip (a group's job when its
    turn comes): its own transaction, committed without waiting for the disk (a redelivered
    job writes it again)."""
    with _own_transactions(conn) as raw:
        raw.execute("BEGIN")
        raw.execute("SET LOCAL synchronous_commit = off")
        raw.execute(_RUNNING, (utcnow(), job_id))
        raw.execute("COMMIT")
