"""JSON Schema checks for ``parameters`` and ``output``, cached by content."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.validators import validator_for

# The meta-schemas say a `pattern` (and a patternProperties key) has the format
# "regex": checked, a pattern that does not compile is an error, not a crash of
# the first run that validates parameters with it.
_REGEX_FORMAT = FormatChecker(formats=("regex",))


@lru_cache(maxsize=4096)
def _schema_errors(canonical: str) -> tuple[tuple[tuple[str | int, ...], str], ...]:
    schema = json.loads(canonical)
    try:
        cls = validator_for(schema, default=Draft202012Validator)
    except Exception as exc:  # an unknown $schema
        return (((), f"unknown $schema: {exc}"),)
    meta = cls(cls.META_SCHEMA, format_checker=_REGEX_FORMAT)
    out = []
    try:
        for err in sorted(meta.iter_errors(schema), key=lambda e: list(map(str, e.path))):
            out.append((tuple(err.path), err.message))
    except RecursionError:
        return (((), "nested too deeply to be checked"),)
    except Exception as exc:  # the checker's own failure is the schema's diagnostic
        return (((), f"cannot be checked ({type(exc).__name__}: {str(exc)[:200]})"),)
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
