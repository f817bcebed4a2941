"""Every table is emptied between tests: named in tests/conftest.py's TABLES, or holding a
foreign key to one that is (TRUNCATE ... CASCADE empties it too on Postgres)."""

from __future__ import annotations

from sqlmodel import SQLModel

import attune.models  # noqa: F401  (every table registered)
from tests.conftest import TABLES


def test_every_table_is_truncated_or_cascaded():
    named = set(TABLES.split(", "))
    tables = SQLModel.metadata.tables
    assert named <= set(tables), named - set(tables)
    missed = {
        name
        for name, table in tables.items()
        if name not in named and not any(fk.column.table.name in named for fk in table.foreign_keys)
    }
    assert not missed, f"not emptied between tests: {sorted(missed)}"
    assert {"pack_blobs", "pack_blob_chunks", "pack_versions"} <= named
