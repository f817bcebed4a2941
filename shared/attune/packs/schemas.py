"""Request and response models of packs (the table is in models.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, StringConstraints, computed_field
from sqlmodel import Field, SQLModel

from attune.packs.models import PackBase
from attune.refs import PACK_REF_MAX, PACK_REF_PATTERN

PackRefStr = Annotated[str, StringConstraints(min_length=1, max_length=PACK_REF_MAX, pattern=PACK_REF_PATTERN)]

# Free-form fields are bounded (README, "Packs"): the request body limit bounds one
# request, these bound what a pack keeps.
META_MAX_BYTES = 64 * 1024  # `meta`, serialised as compact JSON (UTF-8)
META_MAX_DEPTH = 32  # nested objects/arrays in `meta`
TAGS_MAX = 100
TAG_MAX_LENGTH = 100


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (a deep value cannot overflow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if level > META_MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_meta(meta: dict[str, Any]) -> dict[str, Any]:
    if _depth(meta) > META_MAX_DEPTH:
        raise ValueError(f"meta is nested deeper than {META_MAX_DEPTH} levels")
    size = len(json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > META_MAX_BYTES:
        raise ValueError(f"meta is {size} bytes as JSON, more than the {META_MAX_BYTES} allowed")
    return meta


Meta = Annotated[dict[str, Any], AfterValidator(_check_meta)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=TAG_MAX_LENGTH)]
Tags = Annotated[list[Tag], Field(max_length=TAGS_MAX)]


class PackCreate(PackBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ref": "my_pack",
                    "label": "My pack",
                    "version": "1.0.0",
                    "description": "Deployment workflows",
                    "tags": ["deploy"],
                    "meta": {"owner": "platform-team"},
                }
            ]
        },
    )

    ref: PackRefStr
    # optional here: what the request leaves out comes from the pack's own pack.yaml
    label: str | None = Field(default=None, min_length=1, max_length=255)  # type: ignore[assignment]
    version: str | None = Field(default=None, min_length=1, max_length=50)  # type: ignore[assignment]
    tags: Tags = Field(default_factory=list)
    meta: Meta = Field(default_factory=dict)


class PackUpdate(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid", json_schema_extra={"examples": [{"version": "1.1.0", "description": "Now with rollbacks"}]}
    )

    label: str | None = Field(default=None, min_length=1, max_length=255)
    version: str | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=10_000)
    tags: Tags | None = None
    meta: Meta | None = None


class PackPublic(PackBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "id": 1, "ref": "my_pack", "label": "My pack", "version": "1.0.0",
                    "description": "Deployment workflows", "tags": ["deploy"], "meta": {"owner": "platform-team"},
                    "created_at": "2026-11-28T09:00:00Z", "updated_at": "2026-11-28T09:00:00Z",
                }
            ]
        }
    )  # fmt: skip
    id: int
    ref: str
    tags: list[str]
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    active_version_id: int | None = Field(
        default=None, description="The pushed version the pack syncs from (null: its directory under packs_base_dir)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source(self) -> Literal["directory", "version"]:
        """Where the pack's files come from: its directory under packs_base_dir, or a pushed version."""
        return "directory" if self.active_version_id is None else "version"
