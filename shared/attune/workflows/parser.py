"""YAML -> plain data, with line/column available for diagnostics.

The fast path is yaml-rs (Rust): safe loading only, duplicate keys are an
error, alias expansion is bounded. Positions are needed only when a file has
something to report, so the node tree with line/column (PyYAML's composer,
which never expands aliases) is built lazily, on the first lookup.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
import yaml_rs

from attune.workflows.diagnostics import MAX_DIAGNOSTICS, Diagnostic, Path, error

# Events replayed through aliases: a real workflow uses a few hundred; a
# "billion laughs" file hits the bound in a few milliseconds.
MAX_ALIAS_EVENTS = 20_000

_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_ALIAS_EVENTS, max_replay_stack_depth=32)
_DUPLICATE_ERROR = yaml_rs.DuplicateKeyPolicy.Error
_POSITION = re.compile(r"at line (\d+), column (\d+)")
# What may come right before a tag (!foo) or an anchor (&a), blanks aside: a node
# starts after a line break, "- ", ": ", "? ", "[", "{", "," or "---".
_BEFORE_NODE = frozenset("\n\r-:?,[{")
# The tags of YAML's core schema (what JSON holds) and "!" (a plain string): yaml-rs
# drops any other tag silently, or makes something JSON cannot hold (!!set).
_CORE_TAGS = ("str", "int", "float", "bool", "null", "map", "seq")
_KNOWN_TAGS = frozenset({"!", *(f"tag:yaml.org,2002:{t}" for t in _CORE_TAGS)})
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Locator:
    """Maps a data path to the line and column of its node (1-based)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._root: yaml.Node | None = None
        self._failed = False
        # key text -> (key node, value node) of each mapping looked into (the first of
        # repeated keys): a lookup is a dict access, not a scan of the mapping, so
        # placing one diagnostic per key of a 60,000-key mapping stays linear
        self._keys: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def _tree(self) -> yaml.Node | None:
        if self._root is None and not self._failed:
            try:
                self._root = yaml.compose(self.text, Loader=_SafeLoader)
            except (yaml.YAMLError, RecursionError):
                self._failed = True
        return self._root

    def node(self, path: Path, *, key: bool = False) -> yaml.Node | None:
        """The deepest node along ``path`` (the key node of the last step if ``key``)."""
        node = self._tree()
        if node is None:
            return None
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, yaml.MappingNode):
                found = self._index(node).get(str(part))
                if found is None:
                    return node
                node = found[0] if (last and key) else found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if 0 <= part < len(node.value):
                    node = node.value[part]
                else:
                    return node
            else:
                return node
        return node

    def _index(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        index = self._keys.get(id(node))
        if index is None:
            index = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    index.setdefault(k.value, (k, v))
            self._keys[id(node)] = index
        return index

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        if not path and self._root is None:
            found = _root_position(self.text)
            if found is not None:  # the document's start, without composing the whole file
                return found
        node = self.node(path, key=key)
        if node is None:
            return 1, 1
        return node.start_mark.line + 1, node.start_mark.column + 1

    def duplicate_keys(self) -> list[Diagnostic]:
        """Every repeated key of every mapping, at the repeat."""
        root = self._tree()
        found: list[Diagnostic] = []
        if root is None:
            return found
        stack: list[tuple[yaml.Node, Path]] = [(root, ())]
        seen_ids: set[int] = set()
        while stack:
            node, path = stack.pop()
            if id(node) in seen_ids:
                continue
            seen_ids.add(id(node))
            if isinstance(node, yaml.MappingNode):
                first: dict[str, tuple[int, int]] = {}
                for k, v in node.value:
                    kv = k.value if isinstance(k, yaml.ScalarNode) else None
                    if kv is not None and kv in first:
                        line = first[kv][0]
                        found.append(
                            error(
                                "duplicate-key",
                                f"Duplicate key '{kv}' (first defined at line {line})",
                                (*path, kv),
                                line=k.start_mark.line + 1,
                                column=k.start_mark.column + 1,
                            )
                        )
                    elif kv is not None:
                        first[kv] = (k.start_mark.line + 1, k.start_mark.column + 1)
                    stack.append((v, (*path, kv if kv is not None else "?")))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    stack.append((item, (*path, i)))
        found.sort(key=lambda d: (d.line or 0, d.column or 0))
        return found

    def first_alias(self) -> tuple[int, int]:
        try:
            for event in yaml.parse(self.text, Loader=_SafeLoader):
                if isinstance(event, yaml.AliasEvent) and event.start_mark is not None:
                    return event.start_mark.line + 1, event.start_mark.column + 1
        except (yaml.YAMLError, RecursionError):
            pass
        return 1, 1


def _root_position(text: str) -> tuple[int, int] | None:
    """Line and column of the document's first node: the first line that is not blank,
    a comment, a directive or a bare document marker. None when unsure."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("%") or stripped == "---":
            continue
        if stripped.startswith("---") or stripped.startswith("..."):
            return None
        return number, len(line) - len(line.lstrip()) + 1
    return None


def decode(data: bytes) -> tuple[str | None, Diagnostic | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, error(
            "encoding",
            f"File is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            line=line,
            column=column,
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return None, error("encoding", "File contains NUL bytes: it looks binary, not YAML", line=line, column=1)
    return text, None


def _syntax_error(exc: Exception, locator: Locator) -> list[Diagnostic]:
    msg = str(exc)
    if msg.startswith("duplicate mapping key"):
        dups = locator.duplicate_keys()
        if dups:
            return dups
        return [error("duplicate-key", msg[0].upper() + msg[1:], line=1, column=1)]
    if "alias" in msg and ("limit" in msg or "max" in msg):
        line, col = locator.first_alias()
        return [
            error(
                "alias-limit",
                f"Alias expansion exceeds the limit of {MAX_ALIAS_EVENTS} nodes (a 'billion laughs' file?)",
                line=line,
                column=col,
            )
        ]
    m = _POSITION.search(msg)
    reason = msg.strip().splitlines()[-1].strip() if msg.strip() else "invalid YAML"
    if m:
        return [error("yaml-syntax", f"Invalid YAML: {reason}", line=int(m.group(1)), column=int(m.group(2)))]
    return [error("yaml-syntax", f"Invalid YAML: {msg.splitlines()[0] if msg else reason}", line=1, column=1)]


def parse_yaml(text: str, locator: Locator) -> tuple[Any, list[Diagnostic]]:
    """Returns (data, diagnostics). Data is None when the file could not be read."""
    try:
        data = yaml_rs.loads(
            text,
            parse_datetime=False,
            alias_limits=_ALIAS_LIMITS,
            duplicate_key_policy=_DUPLICATE_ERROR,
        )
    except yaml_rs.YAMLDecodeError as exc:
        return None, _syntax_error(exc, locator)
    except (RecursionError, MemoryError, ValueError, TypeError) as exc:
        return None, [error("yaml-syntax", f"Invalid YAML: {exc}", line=1, column=1)]
    if isinstance(data, list) and "---" in text and _multi_document(text):
        return None, [error("yaml-syntax", "File holds several YAML documents; a workflow is one", line=1, column=1)]
    problems = _tags_and_recursion(text)
    if problems:
        return None, problems
    # Keys that are not strings and numbers JSON cannot hold are reported by
    # the validator, on its single walk over the values it keeps.
    return data, []


def _may_hold_node_property(text: str) -> bool:
    """Whether a '!' or '&' stands where a node starts (else the file has no tag and no
    anchor, and is not scanned). str.find: a regex over the whole text cost a quarter
    of a millisecond per file."""
    for mark in "!&":
        i = text.find(mark)
        while i != -1:
            j = i - 1
            while j >= 0 and text[j] in " \t":
                j -= 1
            if j < 0 or text[j] in _BEFORE_NODE:
                return True
            i = text.find(mark, i + 1)
    return False


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def _column(event: yaml.Event) -> int:
    return event.start_mark.column + 1 if event.start_mark is not None else 1


def _tags_and_recursion(text: str) -> list[Diagnostic]:
    """Tags outside YAML's core schema and aliases inside the node they name: yaml-rs
    drops the first silently and reads the second as null. Both are errors here."""
    if not _may_hold_node_property(text):
        return []
    found: list[Diagnostic] = []
    open_anchors: dict[str, int] = {}  # anchors of the collections being read
    stack: list[str | None] = []
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
                tag = event.tag
                if tag is not None and tag not in _KNOWN_TAGS:
                    shown = tag.replace("tag:yaml.org,2002:", "!!", 1) if tag.startswith("tag:yaml.org,2002:") else tag
                    found.append(
                        error(
                            "yaml-tag",
                            f"Unknown YAML tag '{shown}': only YAML's core tags (!!str, !!int, !!float, !!bool, "
                            "!!null, !!map, !!seq) are read",
                            line=_line(event),
                            column=_column(event),
                        )
                    )
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append(event.anchor)
                if event.anchor is not None:
                    open_anchors[event.anchor] = open_anchors.get(event.anchor, 0) + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor = stack.pop() if stack else None
                if anchor is not None:
                    open_anchors[anchor] -= 1
            elif isinstance(event, yaml.AliasEvent) and open_anchors.get(event.anchor or ""):
                found.append(
                    error(
                        "recursive-alias",
                        f"Alias '*{event.anchor}' is inside the node it names: a recursive structure cannot be read",
                        line=_line(event),
                        column=_column(event),
                    )
                )
            if len(found) > MAX_DIAGNOSTICS:
                break
    except (yaml.YAMLError, RecursionError):
        pass  # yaml-rs read the file; this second reader's limits say nothing about it
    return found


def _multi_document(text: str) -> bool:
    try:
        return sum(1 for _ in yaml.compose_all(text, Loader=_SafeLoader)) > 1
    except (yaml.YAMLError, RecursionError):
        return False
