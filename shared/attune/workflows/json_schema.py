"""JSON Schema checks for ``parameters`` and ``output``, cached by content."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for


@lru_cache(maxsize=4096)
def _schema_errors(canonical: str) -> tuple[tuple[tuple[str | int, ...], str], ...]:
    schema = json.loads(canonical)
    try:
        cls = validator_for(schema, default=Draft202012Validator)
    except Exception as exc:  # an unknown $schema
        return (((), f"unknown $schema: {exc}"),)
    meta = cls(cls.META_SCHEMA)
    out = []
    for err in sorted(meta.iter_errors(schema), key=lambda e: list(map(str, e.path))):
        out.append((tuple(err.path), err.message))
    return tuple(out)


def schema_errors(schema: Any) -> tuple[tuple[tuple[str | int, ...], str], ...]:
    """(path inside the schema, message) for each way ``schema`` breaks its meta-schema."""
    try:
        # orjson: the key of the cache above, made for every workflow (json.dumps was 5% of
        # the validator's time in a cold sync profile)
        canonical = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        try:
            canonical = json.dumps(schema, sort_keys=True)
        except (TypeError, ValueError) as exc:
            return (((), f"not JSON: {exc}"),)
    return _schema_errors(canonical)
