"""Deployments upgrade in place: a database that already holds packs, workflows, actions,
jobs (finished and running) and users at an earlier revision upgrades to head with every
row kept, then downgrades and upgrades again. On SQLite and on Postgres."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, text

from tests.unit.test_engine import _postgres_url

FROM_REVISIONS = [
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
]  # schemas deployed before; add the next one each time
# a stored definition (keys in no particular order; Postgres reorders them anyway)
DEFINITION = {
    "version": "1.0",
    "tasks": [{"name": "a", "action": "x.y", "retry": {"delay": 1.5}}],
    "label": "é",
}


def _value(column: sa.Column, n: int):
    t = column.type
    if isinstance(t, sa.Boolean):
        return True
    if isinstance(t, (sa.Integer, sa.SmallInteger)):
        return n
    if isinstance(t, sa.DateTime):
        return dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    if isinstance(t, sa.Uuid):
        return uuid.UUID(int=n)
    if isinstance(t, sa.JSON) or "JSON" in type(t).__name__.upper():
        return [] if column.name in ("deps", "unresolved", "tags", "warnings", "diagnostics") else {}
    return f"{column.name}-{n}"[: getattr(t, "length", None) or 100]


def _fill(conn, table: sa.Table, n: int, **given) -> dict:
    row = {}
    for c in table.columns:
        if c.name in given:
            row[c.name] = given[c.name]
        elif not c.nullable and c.server_default is None:
            row[c.name] = _value(c, n)
    conn.execute(table.insert().values(**row))
    return row


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    from sqlalchemy import make_url
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from attune.db.migrate import ensure_database

    u = make_url(_postgres_url()).set(database=make_url(_postgres_url()).database + "_upgrade")
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    except OperationalError:
        pytest.skip("no Postgres server here (CI has one)")
    ensure_database(u.render_as_string(hide_password=False))
    yield u.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()


def _snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {
            "packs": conn.execute(text("SELECT id, ref, label FROM packs ORDER BY id")).all(),
            "users": conn.execute(text("SELECT id, login, password_hash FROM users ORDER BY id")).all(),
            "workflows": conn.execute(text("SELECT id, ref, pack_id FROM workflow_definitions ORDER BY id")).all(),
            "actions": conn.execute(text("SELECT id, ref FROM actions ORDER BY id")).all(),
            "jobs": conn.execute(text("SELECT id, status, pack_ref, attempts FROM jobs ORDER BY id")).all(),
            "files": conn.execute(text("SELECT pack_id, source_file FROM pack_files ORDER BY source_file")).all(),
        }


def _check_history(conn) -> None:
    """0007: every registered workflow has revision 1 (its definition, hashed as a sync hashes
    it), and the jobs name who started them."""
    from attune.revisions.content import definition_hash

    columns = "ref, number, pack_ref, change, definition_hash, source_file, file_sha256, author"
    rows = conn.execute(text(f"SELECT {columns} FROM workflow_revisions ORDER BY ref")).all()
    assert [tuple(r) for r in rows] == [
        (f"pack{n}.wf", 1, f"pack{n}", "create", definition_hash(DEFINITION), f"source_file-{n}", f"content_hash-{n}",
         "migration")
        for n in (1, 2)
    ]  # fmt: skip
    assert conn.execute(text("SELECT revision FROM workflow_definitions ORDER BY id")).scalars().all() == [1, 1]
    assert conn.execute(text("SELECT started_by FROM jobs ORDER BY id")).scalars().all() == ["user1", "user2"]


_KEPT_IN_ROW = ("sync_staging", "workflow_definitions", "workflow_revisions")


def _pg(url: str) -> bool:
    return url.startswith("postgresql")


def _row_targets(conn) -> dict:
    """Postgres: the storage options of the tables a sync writes definitions to."""
    if conn.dialect.name != "postgresql":
        return {}
    rows = conn.execute(
        text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:t)"), {"t": list(_KEPT_IN_ROW)}
    )
    return dict(rows.all())


@pytest.mark.parametrize("start", FROM_REVISIONS)
def test_upgrade_keeps_every_row(url, start):
    from sqlalchemy.pool import NullPool

    from attune.db.migrate import downgrade, upgrade

    upgrade(url, start)
    engine = create_engine(url, poolclass=NullPool)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for n in (1, 2):
            _fill(conn, meta.tables["packs"], n, id=n, ref=f"pack{n}")
            _fill(conn, meta.tables["users"], n, id=n, login=f"user{n}")
            _fill(
                conn, meta.tables["workflow_definitions"], n, id=n, ref=f"pack{n}.wf", pack_id=n, definition=DEFINITION
            )
            _fill(conn, meta.tables["actions"], n, id=n, ref=f"pack{n}.act", pack_id=n)
            _fill(conn, meta.tables["pack_files"], n, pack_id=n, source_file=f"workflows/wf{n}.yaml", ref=f"pack{n}.wf")
        _fill(conn, meta.tables["jobs"], 1, status="succeeded", pack_id=1, pack_ref="pack1", kind="sync",
              trigger="manual", result={"pack_ref": "pack1", "loaded_count": 1}, created_by=1)  # fmt: skip
        _fill(conn, meta.tables["jobs"], 2, status="running", pack_id=2, pack_ref="pack2", kind="sync",
              trigger="auto", created_by=2)  # fmt: skip
    before = _snapshot(engine)
    upgrade(url, "head")
    assert _snapshot(engine) == before
    with engine.connect() as conn:  # what head added is there, empty for the old rows
        assert conn.execute(text("SELECT count(*) FROM job_leases")).scalar() == 0
        assert conn.execute(text("SELECT summary FROM jobs WHERE status = 'succeeded'")).scalar() is None
        if start < "0007":
            _check_history(conn)
        # 0008: the users from before roles are admins; no key yet
        assert conn.execute(text("SELECT role FROM users ORDER BY id")).scalars().all() == ["admin", "admin"]
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar() == 0
        # 0010: no pack has a stored sync state: each pack's next sync reads as before
        assert conn.execute(text("SELECT count(*) FROM pack_sync_state")).scalar() == 0
        # 0012: no batch row; the batches started before answer from their jobs (test_job_batches)
        assert conn.execute(text("SELECT count(*) FROM job_batches")).scalar() == 0
        # 0013: definitions of up to about 4 KB compressed stay in their rows (Postgres)
        assert _row_targets(conn) == ({t: ["toast_tuple_target=4080"] for t in _KEPT_IN_ROW} if _pg(url) else {})
    downgrade(url, start)
    assert _snapshot(engine) == before
    with engine.connect() as conn:
        assert all(options is None for options in _row_targets(conn).values())  # those that were there
    upgrade(url, "head")
    assert _snapshot(engine) == before
    engine.dispose()


def test_0009_pack_versions_on_a_database_with_packs_workflows_and_jobs(url):
    """Issue 17: the upgrade keeps every row, packs keep syncing from their directory
    (active_version_id NULL), versions can be stored for an existing pack, and the
    downgrade back to 0008 keeps the rows too."""
    from sqlalchemy.pool import NullPool

    from attune.db.migrate import downgrade, upgrade

    upgrade(url, "0008")
    engine = create_engine(url, poolclass=NullPool)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for n in (1, 2):
            _fill(conn, meta.tables["packs"], n, id=n, ref=f"pack{n}")
            _fill(conn, meta.tables["users"], n, id=n, login=f"user{n}")
            _fill(conn, meta.tables["workflow_definitions"], n, id=n, ref=f"pack{n}.wf", pack_id=n,
                  definition=DEFINITION)  # fmt: skip
            _fill(conn, meta.tables["actions"], n, id=n, ref=f"pack{n}.act", pack_id=n)
            _fill(conn, meta.tables["pack_files"], n, pack_id=n, source_file=f"workflows/wf{n}.yaml", ref=f"pack{n}.wf")
        _fill(conn, meta.tables["jobs"], 1, status="succeeded", pack_id=1, pack_ref="pack1", kind="sync",
              trigger="manual", result={"pack_ref": "pack1", "loaded_count": 1}, created_by=1)  # fmt: skip
    before = _snapshot(engine)
    upgrade(url, "head")
    assert _snapshot(engine) == before
    head = sa.MetaData()
    head.reflect(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT active_version_id FROM packs")).scalars().all() == [None, None]
        _fill(conn, head.tables["pack_blobs"], 1, sha256="a" * 64)
        _fill(conn, head.tables["pack_blob_chunks"], 1, sha256="a" * 64, seq=0, data=b"bytes")
        _fill(conn, head.tables["pack_versions"], 1, id=1, pack_id=1, sha256="a" * 64, manifest={}, files=[],
              created_by=1, job_id=None)  # fmt: skip
        conn.execute(text("UPDATE packs SET active_version_id = 1 WHERE id = 1"))
    with engine.begin() as conn:  # a pack deleted takes its versions along; its blob stays for the sweep
        conn.execute(text("DELETE FROM pack_versions WHERE pack_id = 1"))
        assert conn.execute(text("SELECT count(*) FROM pack_blob_chunks")).scalar() == 1
    downgrade(url, "0008")
    assert _snapshot(engine) == before
    upgrade(url, "head")
    assert _snapshot(engine) == before
    engine.dispose()


def test_0011_stored_sync_states_keep_their_content_as_jsonb(url):
    """Issue 15: the stored results and summaries of packs (JSON text at 0010) become JSONB on
    Postgres with the same content, are read back as the replay reads them, and go back to
    text on the downgrade; on SQLite nothing changes."""
    import orjson
    from sqlalchemy.pool import NullPool

    from attune.db.migrate import downgrade, upgrade

    upgrade(url, "0010")
    engine = create_engine(url, poolclass=NullPool)
    meta = sa.MetaData()
    meta.reflect(engine)
    result = {"pack_ref": "pack1", "loaded_count": 2, "job_id": None, "workflows": [{"ref": "pack1.é", "n": 1.5}]}
    summary = {"loaded_count": 2, "unchanged_count": 2}
    with engine.begin() as conn:
        for n in (1, 2):
            _fill(conn, meta.tables["packs"], n, id=n, ref=f"pack{n}")
            conn.execute(
                text("INSERT INTO pack_sync_state (pack_id, fingerprint, externals, result, summary) "
                     "VALUES (:p, :f, :e, :r, :s)"),
                {"p": n, "f": f"fp{n}", "e": '[["x.y", true]]', "r": orjson.dumps(result).decode(),
                 "s": orjson.dumps(summary).decode()},
            )  # fmt: skip

    def stored() -> list:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT pack_id, fingerprint, externals, CAST(result AS TEXT), CAST(summary AS TEXT) "
                     "FROM pack_sync_state ORDER BY pack_id")
            ).all()  # fmt: skip
        return [(p, f, e, orjson.loads(r), orjson.loads(s)) for p, f, e, r, s in rows]

    def kind() -> str:
        if engine.dialect.name != "postgresql":
            return "text"
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT data_type FROM information_schema.columns "
                     "WHERE table_name = 'pack_sync_state' AND column_name = 'result'")
            ).scalar()  # fmt: skip

    before = stored()
    assert before == [(n, f"fp{n}", '[["x.y", true]]', result, summary) for n in (1, 2)]
    upgrade(url, "head")
    assert stored() == before
    assert kind() == ("jsonb" if engine.dialect.name == "postgresql" else "text")
    with engine.begin() as conn:  # a state written at head, as the sync writes it (JSON text)
        conn.execute(text("UPDATE pack_sync_state SET result = :r WHERE pack_id = 2"),
                     {"r": orjson.dumps({**result, "loaded_count": 3}).decode()})  # fmt: skip
    assert stored()[1][3]["loaded_count"] == 3
    downgrade(url, "0010")
    assert kind() == "text"
    assert stored()[0] == before[0] and stored()[1][3] == {**result, "loaded_count": 3}
    upgrade(url, "head")
    assert stored()[0] == before[0]
    engine.dispose()
