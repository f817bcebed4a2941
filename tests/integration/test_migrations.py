"""Migration 0006 (refresh tokens) on a database that already holds data at 0004: the
upgrade keeps every pack, workflow, job and user, the new table works, and the
downgrade back to 0004 keeps them too. On Postgres (a database of its own) and SQLite."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from tests.conftest import EMBEDDED

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB_ID = uuid.UUID("8d3c1f0e-0000-4000-8000-000000000001")


@pytest.fixture
def empty_database(configured: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A database of its own, empty (no revision applied)."""
    if EMBEDDED:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    u = make_url(configured["ATTUNE__DATABASE__URL"])
    name = f"{u.database}_migrations"
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield u.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fill_at_0004(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    j = json.dumps
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, login, password_hash, is_active, created_at) VALUES (1, 'alice', 'x', true, :t)"
            ),
            {"t": NOW},
        )
        conn.execute(
            text("INSERT INTO packs (id, ref, label, version, description, tags, meta, created_at, updated_at) "
                 "VALUES (1, 'old_pack', 'Old', '1.0.0', 'kept', :tags, :meta, :t, :t)"),
            {"tags": j(["a"]), "meta": j({"owner": "ops"}), "t": NOW},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO workflow_definitions (id, ref, pack_id, name, label, version, definition, tags, "
                 "warnings, source_file, content_hash, created_at, updated_at) VALUES (1, 'old_pack.deploy', 1, "
                 "'deploy', 'Deploy', '1.0', :d, :tags, :w, 'workflows/deploy.yaml', :h, :t, :t)"),
            {"d": j({"tasks": [{"name": "a"}]}), "tags": j([]), "w": j([]), "h": "0" * 64, "t": NOW},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO jobs (id, kind, trigger, status, pack_id, pack_ref, options, progress_done, "
                 "attempts, created_by, created_at, error) VALUES (:id, 'sync', 'manual', 'failed', 1, "
                 "'old_pack', :o, 0, 1, 1, :t, 'it failed')"),
            {"id": JOB_ID if not url.startswith("sqlite") else JOB_ID.hex, "o": j({}), "t": NOW},
        )  # fmt: skip
    engine.dispose()


def _data(url: str) -> dict[str, list]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        out = {
            "users": [tuple(r) for r in conn.execute(text("SELECT id, login, is_active FROM users"))],
            "packs": [tuple(r) for r in conn.execute(text("SELECT id, ref, description, meta FROM packs"))],
            "workflows": [tuple(r) for r in conn.execute(text("SELECT id, ref, pack_id FROM workflow_definitions"))],
            "jobs": [tuple(r) for r in conn.execute(text("SELECT pack_ref, status, error, created_by FROM jobs"))],
        }
    engine.dispose()
    return out


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0006_upgrades_and_downgrades_a_database_holding_data(empty_database: str):
    from attune.db.migrate import downgrade, upgrade

    url = empty_database
    upgrade(url, "0004")
    _fill_at_0004(url)
    upgrade(url, "0005")  # the revision deployed before refresh tokens
    before = _data(url)
    assert before["packs"] and before["workflows"] and before["jobs"] and before["users"]

    upgrade(url, "0006")
    assert "refresh_tokens" in _tables(url)
    assert _data(url) == before
    engine = create_engine(url, poolclass=NullPool)
    insert = text(
        "INSERT INTO refresh_tokens (id, family_id, user_id, created_at, expires_at) VALUES (:i, :f, :u, :t, :e)"
    )
    with engine.begin() as conn:  # the table takes a token of an existing user
        if url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(insert, {"i": "a" * 32, "f": "b" * 32, "u": 1, "t": NOW, "e": NOW + timedelta(days=7)})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # and refuses an unknown user
        if url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(insert, {"i": "c" * 32, "f": "b" * 32, "u": 99, "t": NOW, "e": NOW})
    engine.dispose()

    downgrade(url, "0005")
    assert "refresh_tokens" not in _tables(url)
    assert _data(url) == before
    upgrade(url, "head")  # and up again
    assert "refresh_tokens" in _tables(url)
    assert _data(url) == before


def test_0008_makes_every_existing_user_an_admin_and_keeps_the_data(empty_database: str):
    """Access (roles, API keys) on a database that holds packs, workflows, jobs and users at
    0007: the users become admins (no one loses a right), the rest is kept, the new table
    takes a key of an existing user, and the downgrade keeps the data too."""
    from attune.db.migrate import downgrade, upgrade

    url = empty_database
    upgrade(url, "0004")
    _fill_at_0004(url)
    upgrade(url, "0007")
    before = _data(url)
    upgrade(url, "0008")
    assert "api_keys" in _tables(url)
    assert _data(url) == before
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT login, role FROM users")).all() == [("alice", "admin")]
        assert conn.execute(text("SELECT started_by FROM jobs")).scalars().all() == ["alice"]
        conn.execute(
            text("INSERT INTO api_keys (id, name, user_id, role, secret_hash, created_at) "
                 "VALUES ('0123456789abcdef', 'ci', 1, 'editor', :h, :t)"),
            {"h": "0" * 64, "t": NOW},
        )  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO users (id, login, password_hash, is_active, created_at) VALUES (2, 'new', 'x', true, :t)"
            ),
            {"t": NOW},
        )
        assert conn.execute(text("SELECT role FROM users WHERE id = 2")).scalar() == "admin"  # the column's default
        conn.execute(text("DELETE FROM users WHERE id = 2"))
    engine.dispose()
    downgrade(url, "0007")
    assert "api_keys" not in _tables(url)
    assert _data(url) == before
    upgrade(url, "head")
    assert _data(url) == before
