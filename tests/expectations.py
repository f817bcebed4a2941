"""What a test workflow file says of itself: ``# expect: nothing``, or one
``# expect: <error|warning> <code> <line>:<column> <message>`` line per diagnostic
(tests/data/corpus and tests/data/attune_pack)."""

from __future__ import annotations

import re
from pathlib import Path

EXPECT = re.compile(r"^# expect: (?:(nothing)|(error|warning) (\S+) (\d+):(\d+) (.*))$")


def expected(path: Path) -> list[tuple[str, str, int, int, str]]:
    """(severity, code, line, column, message) of each diagnostic the file expects."""
    out = []
    for line in path.read_text().splitlines():
        m = EXPECT.match(line)
        if m and not m.group(1):
            out.append((m.group(2), m.group(3), int(m.group(4)), int(m.group(5)), m.group(6)))
    return out
