"""Pushed pack versions: upload an archive (validated, then activated), list, show,
download, activate (roll back or forward)."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session

from attune.bundles import service as versions
from attune.bundles.push import PushRequest
from attune.bundles.schemas import VersionDetail, VersionPublic
from attune.jobs.models import JobKind
from attune.sync.schemas import PushResult
from attune_api.access import Editor, Viewer
from attune_api.deps import PackRef, SettingsDep, read
from attune_api.routers.sync import _COMMON, WaitQuery, answer_when_done
from attune_api.schemas import MAX_OFFSET, Envelope, Page, Pagination, error_responses

router = APIRouter(prefix="/api/v1/packs", tags=["pack versions"], responses=error_responses(401, 403, 503))
WRITE_BYTES = 1024 * 1024
VersionId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The version's id")]
Activate = Annotated[bool, Query(description="Activate the version when its plan has no errors (default true)")]
AllowErrors = Annotated[bool, Query(description="Activate it even when its plan has errors")]


def _write(fh: object, digest: object, data: bytes) -> None:
    fh.write(data)  # type: ignore[attr-defined]
    digest.update(data)  # type: ignore[attr-defined]


async def _spool(request: Request) -> versions.Upload:
    """The body, streamed to a temporary file (never whole in memory) and hashed on the way."""
    fd, name = tempfile.mkstemp(prefix="attune-upload-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                size += len(chunk)
                if len(pending) >= WRITE_BYTES:
                    await run_in_threadpool(_write, fh, digest, bytes(pending))
                    pending.clear()
            await run_in_threadpool(_write, fh, digest, bytes(pending))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return versions.Upload(path, digest.hexdigest(), size)


@router.post(
    "/{ref}/versions",
    response_model=Envelope[PushResult],
    responses={**_COMMON, **error_responses(408, 413)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The pack's .tar.gz or .zip (recognised by its bytes, whatever the content type)",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def push_version(
    ref: PackRef,
    request: Request,
    by: Editor,
    settings: SettingsDep,
    activate: Activate = True,
    allow_errors: AllowErrors = False,
    wait: WaitQuery = None,
) -> Response:
    """Push a version of the pack: the body is a `.tar.gz` or `.zip` of the pack's directory
    (`pack.yaml` at its root or in its one top-level folder). The archive is checked (422
    naming the entry for what could escape or exhaust the server), stored once by sha256,
    and a job plans it against the registry, then activates it (the pack syncs from it)
    unless `activate=false` or the plan has errors (`allow_errors=true` activates anyway).
    A pack that does not exist yet is created from the archive's `pack.yaml`. Waits for the
    job like a sync (202 with the job after the wait)."""
    upload = await _spool(request)
    try:
        asked = PushRequest(0, activate, allow_errors)
        start = functools.partial(versions.receive, settings, ref, upload, by=by, request=asked)
        _, job_id = await run_in_threadpool(start)
    finally:
        upload.path.unlink(missing_ok=True)
    wait_s = settings.celery.result_wait_seconds if wait is None else wait
    return await answer_when_done(request, ref, job_id, wait_s, JobKind.PUSH)


@router.get("/{ref}/versions", response_model=Page[VersionPublic], responses=error_responses(404, 422))
async def list_versions(
    ref: PackRef,
    by: Viewer,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Page[VersionPublic]:
    """The pack's versions, newest first (the last `versions.keep` are kept, and the active one)."""

    def page(session: Session) -> Page[VersionPublic]:
        pack, rows, total = versions.list_versions(session, ref, limit=limit, offset=offset)
        return Page(
            data=[VersionPublic.of(v, pack.active_version_id) for v in rows],
            pagination=Pagination(total=total, limit=limit, offset=offset),
            message=f"{len(rows)} of {total} versions",
        )

    return await read(page)


@router.get("/{ref}/versions/{version_id}", response_model=Envelope[VersionDetail], responses=error_responses(404, 422))
async def get_version(ref: PackRef, version_id: VersionId, by: Viewer) -> Envelope[VersionDetail]:
    """One version: its manifest, every file, and its plan (validation result)."""

    def one(session: Session) -> Envelope[VersionDetail]:
        pack, v = versions.get_version(session, ref, version_id)
        return Envelope(data=VersionDetail.detail(v, pack.active_version_id), message="Pack version found")

    return await read(one)


@router.get(
    "/{ref}/versions/{version_id}/archive",
    response_class=StreamingResponse,
    responses={**error_responses(404, 422), 200: {"content": {"application/gzip": {}, "application/zip": {}}}},
)
async def download_version(ref: PackRef, version_id: VersionId, by: Viewer) -> StreamingResponse:
    """The archive as it was pushed (its sha256 in the `X-Content-SHA256` header)."""

    def find(session: Session) -> tuple[str, str, int, int]:
        _, v = versions.get_version(session, ref, version_id)
        return v.sha256, v.format, v.size, versions.chunk_count(session, v.sha256)

    sha256, fmt, size, chunks = await read(find)
    name = f"{ref}-{version_id}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(size),
        "X-Content-SHA256": sha256,
    }
    return StreamingResponse(versions.archive_chunks(sha256, chunks), media_type=versions.MEDIA_TYPES[fmt],
                             headers=headers)  # fmt: skip


@router.post(
    "/{ref}/versions/{version_id}/activate",
    response_model=Envelope[PushResult],
    responses=_COMMON,
)
async def activate_version(
    ref: PackRef,
    version_id: VersionId,
    request: Request,
    by: Editor,
    settings: SettingsDep,
    allow_errors: AllowErrors = False,
    wait: WaitQuery = None,
) -> Response:
    """Roll the pack back (or forward) to this version: its plan against the registry now,
    then the pack's sync from it, unless the plan has errors (`allow_errors=true`)."""
    start = functools.partial(versions.activate, ref, version_id, by=by, allow_errors=allow_errors)
    _, job_id = await run_in_threadpool(start)
    wait_s = settings.celery.result_wait_seconds if wait is None else wait
    return await answer_when_done(request, ref, job_id, wait_s, JobKind.PUSH)
