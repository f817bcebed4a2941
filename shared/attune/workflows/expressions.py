"""Jinja expression checks, cached: the same text repeats thousands of times in a pack."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment()


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _syntax_error(parse: Callable[[str], object], text: str) -> str | None:
    try:
        parse(text)
    except TemplateSyntaxError as exc:
        return exc.message or "syntax error"
    except (RecursionError, MemoryError):
        return "expression too deeply nested"
    return None


@lru_cache(maxsize=65536)
def template_error(text: str) -> str | None:
    """None if ``text`` parses as a Jinja template, else the parser's message."""
    return _syntax_error(_env.parse, text)


@lru_cache(maxsize=65536)
def expression_error(text: str) -> str | None:
    """For fields that hold one expression (``when``, ``with_items``): with or without braces."""
    if has_template(text):
        return template_error(text)
    return _syntax_error(_env.compile_expression, text)
