"""All SQL of pushed versions: blobs in chunks, version rows, a pack's active version."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, col

from attune.bundles.models import PackBlob, PackBlobChunk, PackVersion
from attune.db.types import utcnow
from attune.jobs.models import Job, JobKind, JobStatus
from attune.packs.models import Pack

CHUNK_BYTES = 1024 * 1024


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def store_blob(session: Session, *, sha256: str, size: int, content: IO[bytes]) -> bool:
    """Stores the bytes under their sha256 unless they are there already (True when this
    call stored them). Two identical uploads at once: the second waits for the first's
    row (its transaction), then stores nothing."""
    chunks = -(-size // CHUNK_BYTES)
    row = {"sha256": sha256, "size": size, "chunk_count": chunks, "created_at": utcnow()}
    table = PackBlob.__table__  # type: ignore[attr-defined]
    stmt = _insert(session, table).values(row).on_conflict_do_nothing(index_elements=["sha256"])
    if session.execute(stmt.returning(table.c.sha256)).first() is None:
        return False
    seq = 0
    while data := content.read(CHUNK_BYTES):
        session.execute(PackBlobChunk.__table__.insert().values(sha256=sha256, seq=seq, data=data))  # type: ignore[attr-defined]
        seq += 1
    return True


def blob(session: Session, sha256: str) -> PackBlob | None:
    return session.get(PackBlob, sha256)


def chunk(session: Session, sha256: str, seq: int) -> bytes | None:
    return session.execute(
        select(col(PackBlobChunk.data)).where(col(PackBlobChunk.sha256) == sha256, col(PackBlobChunk.seq) == seq)
    ).scalar()


def add_version(session: Session, version: PackVersion) -> tuple[PackVersion, bool]:
    """The pack's version of these bytes: the new row, or the one it had (False)."""
    try:
        with session.begin_nested():
            session.add(version)
            session.flush()
        return version, True
    except IntegrityError:
        found = session.execute(
            select(PackVersion).where(
                col(PackVersion.pack_id) == version.pack_id, col(PackVersion.sha256) == version.sha256
            )
        ).scalar_one()
        return found, False


def get_version(session: Session, pack_id: int, version_id: int, *, for_update: bool = False) -> PackVersion | None:
    stmt = select(PackVersion).where(col(PackVersion.pack_id) == pack_id, col(PackVersion.id) == version_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar()


def version_by_id(session: Session, version_id: int) -> PackVersion | None:
    return session.get(PackVersion, version_id)


def list_versions(session: Session, pack_id: int, *, limit: int, offset: int) -> tuple[Sequence[PackVersion], int]:
    total = session.execute(select(func.count()).where(col(PackVersion.pack_id) == pack_id)).scalar_one()
    rows = (
        session.execute(
            select(PackVersion)
            .options(defer(PackVersion.files), defer(PackVersion.validation))  # type: ignore[arg-type]
            .where(col(PackVersion.pack_id) == pack_id)
            .order_by(col(PackVersion.id).desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def set_version(session: Session, version_id: int, **values: Any) -> None:
    session.execute(update(PackVersion).where(col(PackVersion.id) == version_id).values(**values))


def activate(session: Session, pack_id: int, version_id: int, now: datetime) -> None:
    session.execute(update(Pack).where(col(Pack.id) == pack_id).values(active_version_id=version_id, updated_at=now))
    set_version(session, version_id, activated_at=now)


def prune(session: Session, pack_id: int, *, keep: int, active: int | None) -> list[str]:
    """Removes the pack's versions past the newest ``keep`` (never the active one, nor one a
    job still to finish is to activate: a rollback queued behind a busy worker was lost to
    the next push, its job failed "not found"), then the blobs no version points at any
    more; the sha256 of the blobs removed."""
    old = (
        select(col(PackVersion.id))
        .where(col(PackVersion.pack_id) == pack_id)
        .order_by(col(PackVersion.id).desc())
        .offset(keep)
    )
    pending = awaited_versions(session, pack_id)
    victims = [v for v in session.execute(old).scalars() if v != active and v not in pending]
    if not victims:
        return []
    shas = set(session.execute(select(col(PackVersion.sha256)).where(col(PackVersion.id).in_(victims))).scalars())
    session.execute(delete(PackVersion).where(col(PackVersion.id).in_(victims)))
    return drop_unused_blobs(session, shas)


def awaited_versions(session: Session, pack_id: int) -> set[int]:
    """The versions that the pack's queued or running push jobs (pushes, activations) are for."""
    stmt = select(col(Job.options)).where(
        col(Job.pack_id) == pack_id,
        col(Job.kind) == JobKind.PUSH.value,
        col(Job.status).in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)),
    )
    found = set()
    for options in session.execute(stmt).scalars():
        if isinstance(options, dict) and isinstance(options.get("version_id"), int):
            found.add(options["version_id"])
    return found


def shas_of_pack(session: Session, pack_id: int) -> set[str]:
    return set(session.execute(select(col(PackVersion.sha256)).where(col(PackVersion.pack_id) == pack_id)).scalars())


def drop_unused_blobs(session: Session, shas: set[str]) -> list[str]:
    dropped = []
    for sha in sorted(shas):
        used = exists().where(col(PackVersion.sha256) == sha)
        try:
            with session.begin_nested():  # an upload of the same bytes at this moment keeps them (foreign key)
                gone = session.execute(
                    delete(PackBlob).where(col(PackBlob.sha256) == sha, ~used).returning(col(PackBlob.sha256))
                ).first()
        except IntegrityError:
            continue
        if gone is not None:
            dropped.append(sha)
    return dropped


def versions_of_job(session: Session, job_id: uuid.UUID) -> PackVersion | None:
    return session.execute(select(PackVersion).where(col(PackVersion.job_id) == job_id)).scalar()
