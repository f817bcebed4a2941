from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from attune.db.types import utcnow
from attune.errors import Conflict, NotFound
from attune.packs import repository
from attune.packs.models import Pack, PackCreate, PackUpdate
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


def list_packs(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Pack], int]:
    return repository.list_page(session, limit=limit, offset=offset)


def all_refs(session: Session) -> list[str]:
    return repository.list_refs(session)


def create_pack(session: Session, data: PackCreate) -> Pack:
    if repository.get_by_ref(session, data.ref) is not None:
        raise Conflict(f"Pack '{data.ref}' already exists")
    try:
        with session.begin_nested():
            return repository.add(session, Pack.model_validate(data))
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
    (the history stays readable for revisions.retention_days)."""
    pack = repository.get_by_ref(session, ref, for_update=True)
    if pack is None:
        raise pack_not_found(ref)
    revisions.tombstone_pack(session, pack, author=by, now=utcnow())
    repository.delete(session, pack)
