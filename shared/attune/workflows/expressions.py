"""Jinja expression checks, cached: the same text repeats thousands of times in a pack."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from jinja2 import TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment()


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


# The parser recurses on brackets and on chains of unary operators, and its own
# limit (Python's recursion limit) depends on how deep the caller's stack already
# is: past these bounds an expression is refused before the parser sees it, the
# same way wherever it is checked.
MAX_NESTING = 32
_STEP = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_UNARY_CHAIN = re.compile(rf"(?:(?:\bnot\b|[-+])\s*){{{MAX_NESTING + 1},}}")


def _too_deep(expr: str) -> bool:
    if _UNARY_CHAIN.search(expr) is not None:
        return True
    if expr.count("(") + expr.count("[") + expr.count("{") <= MAX_NESTING:
        return False
    depth = 0
    for c in expr:
        step = _STEP.get(c)
        if step is not None:
            depth += step
            if depth > MAX_NESTING + 2:  # + the braces of {{ }}
                return True
    return False


def _nested_too_deep(text: str, template: bool) -> bool:
    """Whether an expression of ``text`` (of each {{ }} and {% %} block, for a template)
    nests deeper than ``MAX_NESTING``. The text around the blocks is not looked at."""
    if not template:
        return _too_deep(text)
    return any(_too_deep(m.group()) for m in _BLOCK.finditer(text))


def _syntax_error(parse: Callable[[str], object], text: str, template: bool) -> str | None:
    """The parser's message, or None. Never raises: whatever the parser's own limits
    throw (recursion, the compiler's nesting limit, memory) is a message too."""
    if _nested_too_deep(text, template):
        return f"expression nested deeper than {MAX_NESTING} levels"
    try:
        parse(text)
    except TemplateSyntaxError as exc:
        return exc.message or "syntax error"
    except (RecursionError, MemoryError):
        return "expression too deeply nested"
    except SyntaxError as exc:  # Python's compiler, on what the expression compiles to
        return f"expression too complex ({exc.msg})"
    except Exception as exc:  # the parser's own failure is the expression's diagnostic
        return f"expression cannot be parsed ({type(exc).__name__})"
    return None


@lru_cache(maxsize=65536)
def template_error(text: str) -> str | None:
    """None if ``text`` parses as a Jinja template, else the parser's message."""
    return _syntax_error(_env.parse, text, True)


def _parse_expression(text: str) -> None:
    """What ``compile_expression`` checks, without compiling: Jinja's compiler costs cubic
    time in the length of a chain of operators (300 terms: 15 s), its parser linear."""
    parser = Parser(_env, text, state="variable")
    parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)


@lru_cache(maxsize=65536)
def expression_error(text: str) -> str | None:
    """For fields that hold one expression (``when``, ``with_items``): with or without braces."""
    if has_template(text):
        return template_error(text)
    return _syntax_error(_parse_expression, text, False)
