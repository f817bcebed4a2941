"""Pushed versions on the API's side: receive an archive (checked, stored once by sha256,
a version row, its job), list and show versions, read an archive back, activate one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from attune.access.principal import Principal
from attune.bundles import archive
from attune.bundles import repository as repo
from attune.bundles.cache import limits_of
from attune.bundles.models import PackVersion, VersionState
from attune.bundles.push import PushRequest, version_of
from attune.config import Settings
from attune.db.engine import get_engine, read_only
from attune.errors import Conflict, DependencyUnavailable
from attune.jobs import pipeline
from attune.jobs import service as jobs
from attune.jobs.models import JobKind, JobTrigger
from attune.packs import repository as packs_repo
from attune.packs import service as packs
from attune.packs.models import Pack
from attune.packs.schemas import PackCreate

MEDIA_TYPES = {"tar.gz": "application/gzip", "zip": "application/zip"}


@dataclass(frozen=True, slots=True)
class Upload:
    """An archive received whole on the API's disk (never in memory)."""

    path: Path
    sha256: str
    size: int


def _text(value: object, limit: int) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text[:limit] if text else None


def _pack_for(session: Session, ref: str, found: archive.Inspected) -> Pack:
    """The pack, created from the archive's pack.yaml when it does not exist yet."""
    pack = packs_repo.get_by_ref(session, ref, for_share=True)
    if pack is not None:
        return pack
    m = found.manifest
    body = PackCreate(
        ref=ref,
        label=_text(m.get("label"), 255) or ref,
        version=found.manifest_version or "0",
        description=_text(m.get("description"), 10_000),
    )
    try:
        return packs.create_pack(session, body)
    except Conflict:  # a push of the same new pack at the same moment created it
        return packs.get_pack(session, ref, keep=True)


def receive(settings: Settings, ref: str, upload: Upload, *, by: Principal | None,
            request: PushRequest | None = None) -> tuple[PackVersion, uuid.UUID]:  # fmt: skip
    """Checks the archive (HostileArchive, 422), stores it (once per sha256), records the
    pack's version and starts its job; (the version, the job's id)."""
    found = archive.inspect(upload.path, pack_ref=ref, limits=limits_of(settings))
    with Session(get_engine(), expire_on_commit=False) as session:
        pack = _pack_for(session, ref, found)
        assert pack.id is not None
        with upload.path.open("rb") as fh:
            repo.store_blob(session, sha256=upload.sha256, size=upload.size, content=fh)
        version, _ = repo.add_version(
            session,
            PackVersion(
                pack_id=pack.id, pack_ref=ref, sha256=upload.sha256, size=upload.size, format=found.format,
                file_count=len(found.files), unpacked_size=found.unpacked_bytes, prefix=found.prefix,
                manifest_version=found.manifest_version, manifest=found.manifest,
                files=[[p, s] for p, s in found.files], created_by=None if by is None else by.user_id,
            ),
        )  # fmt: skip
        if version.uploaded_by is None and by is not None:
            version.uploaded_by = by.actor  # the login, or the key (key:<name>#<id>)
        assert version.id is not None
        asked = PushRequest(version.id) if request is None else PushRequest(version.id, request.activate,
                                                                               request.allow_errors)  # fmt: skip
        job_id = _start(session, pack, version, asked, by)
        repo.prune(session, pack.id, keep=settings.versions.keep, active=pack.active_version_id)
        session.commit()
        _enqueue(session, job_id)
    return version, job_id


def _start(session: Session, pack: Pack, version: PackVersion, asked: PushRequest, by: Principal | None) -> uuid.UUID:
    job = pipeline.add(session, pack, kind=JobKind.PUSH, trigger=JobTrigger.MANUAL, by=by, options=asked.options())
    version.job_id = job.id
    version.state = VersionState.PENDING
    session.add(version)
    session.flush()
    return job.id


def _enqueue(session: Session, job_id: uuid.UUID) -> None:
    failure = pipeline.enqueue(session, jobs.get_job(session, job_id))
    if failure is not None:
        raise DependencyUnavailable(failure, job_id=str(job_id))


def activate(ref: str, version_id: int, *, by: Principal | None, allow_errors: bool) -> tuple[PackVersion, uuid.UUID]:
    """Rolls the pack back (or forward) to one of its versions: a push job from its content."""
    with Session(get_engine(), expire_on_commit=False) as session:
        pack = packs.get_pack(session, ref, keep=True)
        version = version_of(session, pack, version_id)
        job_id = _start(session, pack, version, PushRequest(version_id, True, allow_errors), by)
        session.commit()
        _enqueue(session, job_id)
    return version, job_id


def list_versions(session: Session, ref: str, *, limit: int, offset: int) -> tuple[Pack, Sequence[PackVersion], int]:
    pack = packs.get_pack(session, ref)
    assert pack.id is not None
    rows, total = repo.list_versions(session, pack.id, limit=limit, offset=offset)
    return pack, rows, total


def get_version(session: Session, ref: str, version_id: int) -> tuple[Pack, PackVersion]:
    pack = packs.get_pack(session, ref)
    return pack, version_of(session, pack, version_id)


def archive_chunks(sha256: str, chunk_count: int) -> Iterator[bytes]:
    """The archive's bytes, a chunk at a time, each read in a short transaction of its own."""
    for seq in range(chunk_count):
        with Session(read_only(get_engine())) as session:
            data = repo.chunk(session, sha256, seq)
        if data is None:
            return
        yield data


def chunk_count(session: Session, sha256: str) -> int:
    blob = repo.blob(session, sha256)
    return 0 if blob is None else blob.chunk_count
