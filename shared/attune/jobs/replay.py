"""A bulk sync's unchanged pack, finished on Postgres in two round trips (issue 15).

``sync.fingerprint.replay`` answers an unchanged small pack's sync from its stored state;
through the ORM the transaction around it (lock, state, job row, lease, commit) cost about
1 ms of a worker's CPU per pack, ten times what the work needs: a tree of 2,000 unchanged
packs spent most of its re-sync there. Here the same transaction runs on the driver's
connection, in pipeline mode: the lock and the state's read go in one round trip (the
server runs them in order, and the read's snapshot is taken after the lock is held),
the job's row, the lease's release and the commit in another. Nothing else differs from
the ORM path (``tests/e2e/test_pack_tree.py`` compares them in both modes).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection

from attune.db.types import utcnow
from attune.sync.fingerprint import resolve_as_stored
from attune.sync.store import LOCK_NAMESPACE

_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"
_STATE = "SELECT externals, result, summary FROM pack_sync_state WHERE pack_id = %s AND fingerprint = %s"
_OUTSIDE = (
    "SELECT ref FROM actions WHERE pack_id <> %s AND ref = ANY(%s) "
    "UNION SELECT ref FROM workflow_definitions WHERE pack_id <> %s AND ref = ANY(%s)"
)
# the job's row is all this transaction writes, and a redelivered job writes it again
# after a crash: its commit does not wait for the disk
_RELAX = "SET LOCAL synchronous_commit = off"
_FINISH = (
    "UPDATE jobs SET status = 'succeeded', result = %s::jsonb, summary = %s::jsonb, finished_at = %s, "
    "progress_done = %s, progress_total = %s WHERE id = %s"
)
_RELEASE = "DELETE FROM job_leases WHERE job_id = %s AND task = %s"


def replay(
    conn: Connection, *, job_id: uuid.UUID, pack_id: int, fingerprint: str, task: str, verified: str | None = None
) -> dict[str, Any] | None:
    """Finishes the job with its pack's stored result (committed) when the stored state has
    this fingerprint and every outside call resolves as it did; returns the job's summary.
    None when it does not apply (nothing written, the transaction ended). ``verified``: the
    stored calls (JSON text) that the group found resolving as stored a moment ago: the
    state must still hold exactly those, and they are not asked again."""
    assert not conn.in_transaction()
    raw: Any = conn.connection.driver_connection
    try:
        with raw.cursor() as cur:
            with raw.pipeline():
                cur.execute(_LOCK, (LOCK_NAMESPACE, pack_id))
                if verified is None:
                    cur.execute(_STATE, (pack_id, fingerprint))
                else:
                    cur.execute(_STATE + " AND externals = %s", (pack_id, fingerprint, verified))
            row = cur.fetchone()
            if row is None:
                raw.rollback()
                return None
            externals = orjson.loads(row[0])
            if externals and verified is None:
                refs = [ref for ref, _ in externals]
                cur.execute(_OUTSIDE, (pack_id, refs, pack_id, refs))
                if not resolve_as_stored(externals, {r for (r,) in cur.fetchall()}):
                    raw.rollback()
                    return None
            result = orjson.loads(row[1])
            result["job_id"] = str(job_id)
            summary = orjson.loads(row[2])
            count = result["loaded_count"]
            with raw.pipeline():
                cur.execute(_RELAX)
                cur.execute(_FINISH, (orjson.dumps(result).decode(), row[2], utcnow(), count, count, job_id))
                cur.execute(_RELEASE, (job_id, task))
                raw.commit()
    except BaseException:
        raw.rollback()
        raise
    return summary
