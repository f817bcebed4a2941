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


# Keywords of a JSON Schema whose value is a mapping: a `parameters` with one of them at its
# top level is a JSON Schema, not Attune's flat form.
_SCHEMA_MAPPINGS = frozenset(
    {
        "properties",
        "patternProperties",
        "additionalProperties",
        "definitions",
        "$defs",
        "dependentSchemas",
        "items",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)


def is_flat_schema(schema: dict[Any, Any]) -> bool:
    """Attune's flat form (its docs and fixtures: ``{url: {type: string, required: true}}``):
    not empty, every value a mapping (a property's schema), no JSON Schema keyword."""
    if not schema:
        return False
    return all(type(value) is dict and key not in _SCHEMA_MAPPINGS for key, value in schema.items())


def flat_to_json_schema(flat: dict[Any, Any]) -> dict[str, Any]:
    """The flat form as a JSON Schema: an object whose properties are the flat entries
    (``required: true`` moved into the object's ``required`` list)."""
    properties: dict[Any, Any] = {}
    required = []
    for name, prop in flat.items():
        prop = dict(prop)
        if prop.get("required") is True:
            required.append(name)
        if type(prop.get("required")) is bool:
            del prop["required"]
        properties[name] = prop
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def parameter_names(schema: Any) -> set[str]:
    """The parameter names a (normalised) schema declares, and its top-level keys (as Attune's
    expression validator takes them)."""
    if type(schema) is not dict:
        return set()
    names = {k for k in schema if type(k) is str}
    props = schema.get("properties")
    if type(props) is dict:
        names.update(k for k in props if type(k) is str)
    return names
