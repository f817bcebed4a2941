"""Attune's expression language, checked statically (no evaluation, no ``eval``).

A template string holds ``{{ ... }}`` blocks; each block's text is one expression of
Attune's own language (``crates/common/src/workflow/expression/``: ``tokenizer.rs``,
``parser.rs``), not Jinja: literals (integers, floats, quoted strings, true, false,
null, ``[a, b]`` arrays), arithmetic (``+ - * / %``, unary ``-``), comparisons
(``== != < > <= >=``, ``in``), ``and``/``or``/``not``, ``.field`` and ``[index]``
access, and calls of a bare function name (``length(x)``, ``succeeded()``). Jinja's
filters (``x | upper``), conditional expressions (``a if c else b``) and ``{% %}``
blocks are not part of it.

The static check follows ``expression_validator.rs``: blocks are taken from the first
``{{`` to the next ``}}`` (an unclosed ``{{`` and an empty block are left alone), each must
parse, and the bare names it reads (not field names after ``.``, not function names)
must be a known namespace or a declared var or parameter (a warning here).

Results are cached by text: the same strings repeat thousands of times in a pack.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Names every expression may read (expression_validator.rs, CANONICAL_NAMESPACES, with
# `inquiry` for tasks that wait for one, and the literals).
NAMESPACES = frozenset(
    {
        "parameters",
        "workflow",
        "vars",
        "variables",
        "task",
        "tasks",
        "inquiry",
        "config",
        "keystore",
        "item",
        "index",
        "system",
        "true",
        "false",
        "null",
    }
)

# Brackets and chains of unary operators make the parser recurse: past these bounds an
# expression is refused before it is parsed (Attune has no such bound: a deliberate limit).
MAX_NESTING = 32
_I64_MAX = 2**63 - 1
_STEP = {"(": 1, "[": 1, ")": -1, "]": -1}
_UNARY_CHAIN = re.compile(rf"(?:(?:\bnot\b|-)\s*){{{MAX_NESTING + 1},}}")

# One token (tokenizer.rs): a number ("1", "1.5"; "1." is 1 then a dot), a quoted string
# (a backslash escapes any character), a name or keyword, an operator or punctuation.
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>[0-9]+(?:\.[0-9]+)?)
      | (?P<str>"(?:[^"\\]|\\[\s\S])*"|'(?:[^'\\]|\\[\s\S])*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|[-+*/%<>()\[\],.])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">=", "in"})
_NUM, _STR, _NAME, _OP, _KW, _END = range(6)


class ExpressionError(Exception):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position  # 0-based, in the expression's text


def _tokens(text: str) -> list[tuple[int, str, int]]:
    """(kind, text, position) of each token, then an end token."""
    out: list[tuple[int, str, int]] = []
    pos = 0
    n = len(text)
    match = _TOKEN.match
    while True:
        m = match(text, pos)
        if m is None or m.lastgroup is None:
            rest = text[pos:].lstrip()
            if not rest:
                out.append((_END, "end of expression", n))
                return out
            at = n - len(rest)
            c = rest[0]
            if c in "\"'":
                raise ExpressionError("unterminated string", at)
            if c == "=":
                raise ExpressionError("unexpected character '=' (use '==' to compare)", at)
            if c == "|":
                raise ExpressionError("unexpected character '|' (Jinja filters are not expressions here)", at)
            raise ExpressionError(f"unexpected character '{c}'", at)
        group = m.lastgroup
        value = m.group(group)
        start = m.start(group)
        if group == "name":
            out.append((_KW if value in _KEYWORDS else _NAME, value, start))
        elif group == "num":
            if "." not in value and int(value) > _I64_MAX:
                raise ExpressionError(f"integer {value} is too large", start)
            out.append((_NUM, value, start))
        elif group == "str":
            out.append((_STR, value, start))
        else:
            out.append((_OP, value, start))
        pos = m.end()


class _Parser:
    """Recursive descent (parser.rs): or < and < not < comparison < + - < * / % < unary - <
    postfix (. [ ] call) < primary. Collects the bare names read, in ``names``."""

    __slots__ = ("i", "names", "tokens")

    def __init__(self, tokens: list[tuple[int, str, int]]) -> None:
        self.tokens = tokens
        self.i = 0
        self.names: list[str] = []

    def fail(self, expected: str | None = None) -> ExpressionError:
        kind, text, pos = self.tokens[self.i]
        shown = text if kind == _END else f"'{text}'"
        if expected:
            return ExpressionError(f"expected {expected}, found {shown}", pos)
        return ExpressionError(f"unexpected {shown}", pos)

    def at(self, text: str) -> bool:
        kind, value, _ = self.tokens[self.i]
        return value == text and kind in (_OP, _KW)

    def expect(self, text: str) -> None:
        if not self.at(text):
            raise self.fail(f"'{text}'")
        self.i += 1

    def parse(self) -> None:
        self.parse_or()
        if self.tokens[self.i][0] != _END:
            raise self.fail()

    def parse_or(self) -> None:
        self.parse_and()
        while self.at("or"):
            self.i += 1
            self.parse_and()

    def parse_and(self) -> None:
        self.parse_not()
        while self.at("and"):
            self.i += 1
            self.parse_not()

    def parse_not(self) -> None:
        while self.at("not"):
            self.i += 1
        self.parse_comparison()

    def parse_comparison(self) -> None:
        self.parse_binary()
        while self.tokens[self.i][1] in _COMPARISONS and self.tokens[self.i][0] in (_OP, _KW):
            self.i += 1
            self.parse_binary()

    def parse_binary(self) -> None:
        """``+ -`` over ``* / %`` over unary minus: the same tokens are accepted with one
        loop (precedence changes no verdict of a static check)."""
        self.parse_unary()
        while True:
            kind, value, _ = self.tokens[self.i]
            if kind != _OP or value not in "+-*/%" or len(value) != 1:
                return
            self.i += 1
            self.parse_unary()

    def parse_unary(self) -> None:
        while self.at("-"):
            self.i += 1
        self.parse_postfix()

    def parse_postfix(self) -> None:
        bare = self.parse_primary()
        while True:
            kind, value, _ = self.tokens[self.i]
            if kind != _OP:
                return
            if value == ".":
                self.i += 1
                if self.tokens[self.i][0] not in (_NAME, _KW):
                    raise self.fail("a field name")
                self.i += 1
            elif value == "[":
                self.i += 1
                self.parse_or()
                self.expect("]")
            elif value == "(" and bare:
                self.names.pop()  # a function's name, not a variable read
                self.i += 1
                if not self.at(")"):
                    self.parse_or()
                    while self.at(","):
                        self.i += 1
                        self.parse_or()
                self.expect(")")
            else:
                return
            bare = False

    def parse_primary(self) -> bool:
        """Parses a primary; True when it is a bare name (which a call may follow)."""
        kind, value, _ = self.tokens[self.i]
        if kind in (_NUM, _STR) or (kind == _KW and value in ("true", "false", "null")):
            self.i += 1
            return False
        if kind == _NAME:
            self.i += 1
            self.names.append(value)
            return True
        if kind == _OP and value == "(":
            self.i += 1
            first = self.i
            self.parse_or()
            self.expect(")")
            # "(f)(x)" calls f in Attune's parser: a group of one name stays a bare name
            return self.i == first + 2 and self.tokens[first][0] == _NAME
        if kind == _OP and value == "[":
            self.i += 1
            if not self.at("]"):
                self.parse_or()
                while self.at(","):
                    self.i += 1
                    if self.at("]"):
                        break
                    self.parse_or()
            self.expect("]")
            return False
        raise self.fail()


def _too_deep(expr: str) -> bool:
    if _UNARY_CHAIN.search(expr) is not None:
        return True
    if expr.count("(") + expr.count("[") <= MAX_NESTING:
        return False
    depth = 0
    for c in expr:
        step = _STEP.get(c)
        if step is not None:
            depth += step
            if depth > MAX_NESTING:
                return True
    return False


def _check(expr: str) -> tuple[str, int] | tuple[None, list[str]]:
    """(message, position) when ``expr`` does not parse, else (None, the bare names it reads)."""
    if _too_deep(expr):
        return f"expression nested deeper than {MAX_NESTING} levels", 0
    try:
        parser = _Parser(_tokens(expr))
        parser.parse()
    except ExpressionError as exc:
        return exc.message, exc.position
    except RecursionError:
        return "expression too deeply nested", 0
    return None, parser.names


def _blocks(text: str) -> list[tuple[str, int]]:
    """The ``{{ }}`` blocks of a template (their inner text, its offset), as Attune's
    extract_expressions takes them."""
    out = []
    start = text.find("{{")
    while start != -1:
        end = text.find("}}", start + 2)
        if end == -1:
            break
        out.append((text[start + 2 : end], start + 2))
        start = text.find("{{", end + 2)
    return out


def has_template(text: str) -> bool:
    return "{{" in text


@lru_cache(maxsize=65536)
def unclosed(text: str) -> bool:
    """Whether a ``{{`` has no ``}}`` after it (Attune leaves it as text: a slip, most likely)."""
    start = text.rfind("{{")
    return start != -1 and text.find("}}", start + 2) == -1 and not text.endswith("}}", start)


@lru_cache(maxsize=65536)
def analyse_template(text: str) -> tuple[str | None, frozenset[str]]:
    """(the first syntax error of a template's blocks, with its column in ``text``, or None;
    the bare names its blocks read)."""
    names: set[str] = set()
    for inner, offset in _blocks(text):
        stripped = inner.strip()
        if not stripped:
            continue
        lead = len(inner) - len(inner.lstrip())
        message, found = _check(stripped)
        if message is not None:
            assert isinstance(found, int)
            column = offset + lead + found + 1
            return f"{message} at column {column} of '{_shorten(text)}'", frozenset()
        assert isinstance(found, list)
        names.update(found)
    return None, frozenset(names)


@lru_cache(maxsize=65536)
def sound_template(text: str) -> frozenset[str] | None:
    """The bare names a template reads when its blocks parse and none is left unclosed, else
    None: the validator's common case in one cached lookup."""
    message, names = analyse_template(text)
    return names if message is None and not unclosed(text) else None


def template_error(text: str) -> str | None:
    """None if every ``{{ }}`` block of ``text`` parses, else the first error."""
    return analyse_template(text)[0]


def template_names(text: str) -> frozenset[str]:
    """The bare names the blocks of a (valid) template read."""
    return analyse_template(text)[1]


@lru_cache(maxsize=65536)
def expression_error(text: str) -> str | None:
    """For fields that hold one expression (``when``, ``with_items``): a template, or the
    expression itself without braces."""
    if has_template(text):
        return template_error(text)
    stripped = text.strip()
    message, found = _check(stripped)
    if message is None:
        return None
    assert isinstance(found, int)
    column = len(text) - len(text.lstrip()) + found + 1
    return f"{message} at column {column} of '{_shorten(text)}'"


@lru_cache(maxsize=65536)
def expression_check(text: str) -> tuple[bool, frozenset[str]]:
    """(whether a field holding one expression is sound: it parses and has no unclosed
    ``{{``; the bare names it reads). The validator's fast path."""
    if expression_error(text) is not None or unclosed(text):
        return False, frozenset()
    return True, expression_names(text)


def expression_names(text: str) -> frozenset[str]:
    if has_template(text):
        return template_names(text)
    message, found = _check(text.strip())
    return frozenset(found) if message is None and isinstance(found, list) else frozenset()


def _shorten(text: str, most: int = 80) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."
