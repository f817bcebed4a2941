from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from attune.bundles import repository as bundles
from attune.db.types import utcnow
from attune.errors import AttuneError, Conflict, NotFound
from attune.packs import repository
from attune.packs.models import Pack
from attune.packs.schemas import PackCreate, PackUpdate
from attune.revisions import repository as revisions


def pack_not_found(ref: str) -> NotFound:
    return NotFound(f"Pack '{ref}' not found")


def get_pack(session: Session, ref: str, *, keep: bool = False) -> Pack:
    """``keep``: hold a share lock until the transaction ends, so that the pack cannot be
    deleted while rows pointing at it (jobs) are being written."""
    pack = repository.get_by_ref(session, ref, for_share=keep)
    if pack is None:
        raise pack_not_found(ref)
    return pack


def pack_ids(session: Session, refs: Sequence[str], *, keep: bool = False) -> list[tuple[int, str]]:
    """(id, ref) of each of ``refs``, in their order, in one query (``keep``: as ``get_pack``):
    NotFound for the first unknown."""
    found = repository.ids_by_ref(session, refs, for_share=keep)
    for ref in refs:
        if ref not in found:
            raise pack_not_found(ref)
    return [(found[ref], ref) for ref in refs]


def list_packs(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Pack], int]:
    return repository.list_page(session, limit=limit, offset=offset)


def all_refs(session: Session) -> list[str]:
    return repository.list_refs(session)


MANIFEST_MAX_BYTES = 64 * 1024
MANIFEST_FIELDS = ("label", "version", "description")


class MissingPackFields(AttuneError):
    status_code = 422


def read_manifest(packs_base_dir: Path, ref: str) -> dict[str, str]:
    """The label, version and description of ``<packs_base_dir>/<ref>/pack.yaml`` that are
    usable strings; {} when there is no such regular file (never a link) or it is not a
    YAML mapping. ``ref`` is a valid pack ref (it cannot leave the base directory)."""
    path = Path(packs_base_dir) / ref / "pack.yaml"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        raw = os.read(fd, MANIFEST_MAX_BYTES + 1)
    except OSError:
        return {}
    finally:
        os.close(fd)
    if len(raw) > MANIFEST_MAX_BYTES:
        return {}
    try:
        data: Any = yaml.safe_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for key in MANIFEST_FIELDS:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # version: 1.0 in YAML is a number
        if isinstance(value, str) and value.strip():
            out[key] = value.strip()
    return out


def create_pack(session: Session, data: PackCreate, *, packs_base_dir: Path | None = None) -> Pack:
    """Creates the pack record. Label, version and description the request leaves out are
    taken from the pack's ``pack.yaml`` under ``packs_base_dir`` (the request wins)."""
    if repository.get_by_ref(session, data.ref) is not None:
        raise Conflict(f"Pack '{data.ref}' already exists")
    given = data.model_dump(exclude_none=True)
    if packs_base_dir is not None and any(key not in given for key in MANIFEST_FIELDS):
        given = {**read_manifest(packs_base_dir, data.ref), **given}
    missing = [key for key in ("label", "version") if key not in given]
    if missing:
        names = " and ".join(missing)
        raise MissingPackFields(
            f"Missing required field{'s' if len(missing) > 1 else ''}: {names} "
            f"(give {'them' if len(missing) > 1 else 'it'} in the request or in the pack's pack.yaml)",
            missing=missing,
        )
    try:
        with session.begin_nested():
            return repository.add(session, Pack.model_validate(given))
    except IntegrityError as exc:  # a concurrent create won the race
        raise Conflict(f"Pack '{data.ref}' already exists") from exc


def update_pack(session: Session, ref: str, data: PackUpdate) -> Pack:
    pack = repository.get_by_ref(session, ref, for_update=True)
    if pack is None:
        raise pack_not_found(ref)
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key in ("label", "version", "tags", "meta"):
            continue  # required columns: null means "leave as is"
        setattr(pack, key, value)
    pack.updated_at = utcnow()
    session.add(pack)
    session.flush()
    return pack


def delete_pack(session: Session, ref: str, *, by: str) -> None:
    """Deletes the pack and its workflows; each workflow's history gets a tombstone by ``by``
    (the history stays readable for revisions.retention_days). Its pushed versions go, and
    the archives no other pack's version holds (they stayed in the database for good)."""
    pack = repository.get_by_ref(session, ref, for_update=True)
    if pack is None:
        raise pack_not_found(ref)
    assert pack.id is not None
    stored = bundles.shas_of_pack(session, pack.id)
    revisions.tombstone_pack(session, pack, author=by, now=utcnow())
    repository.delete(session, pack)  # its versions go with it
    bundles.drop_unused_blobs(session, stored)  # their archives, unless another pack's version holds one
