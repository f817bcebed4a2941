"""The pack's workflow files as a whole-pack sync sees them (sync/engine.py)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from attune.workflows.loader import LINKED_FOLDER, WORKFLOW_EXTENSIONS, WORKFLOW_SUFFIX, list_workflow_files

if TYPE_CHECKING:
    from attune.sync.engine import Target


class Listing:
    """The pack's workflow files (paths in the pack), listed once and only when asked. Whether
    a ref is one of the pack's workflows is answered without listing (a chunk of a large pack
    asks it of the few refs its tasks call, and listing 10,000 files per chunk cost more)."""

    __slots__ = ("_paths", "_prefix", "_root")

    def __init__(self, target: Target, paths: list[str] | None = None) -> None:
        self._root = target.root
        self._prefix = target.pack_ref + "."
        self._paths = paths

    def paths(self) -> list[str]:
        if self._paths is None:
            self._paths = list_workflow_files(self._root) or []
        return self._paths

    def has_ref(self, ref: str) -> bool:
        """Whether a regular file of either layout names the workflow ``ref`` (what the listing
        would hold: ``workflows/`` or ``actions/workflows/``, ``x.yaml``, ``x.yml`` or
        ``x.workflow.yaml|yml``); the caller (KnownRefs) asks once per ref."""
        if not ref.startswith(self._prefix):
            return False
        stem = ref[len(self._prefix) :]
        if not stem or "/" in stem or "\0" in stem:
            return False
        # x.workflow.yaml names x: a stem ending so comes only from a file with the suffix twice
        middles = (WORKFLOW_SUFFIX,) if stem.endswith(WORKFLOW_SUFFIX) else ("", WORKFLOW_SUFFIX)
        for folder in ("workflows", LINKED_FOLDER):
            for middle in middles:
                for ext in WORKFLOW_EXTENSIONS:
                    try:
                        mode = os.lstat(self._root / folder / f"{stem}{middle}{ext}").st_mode
                    except (OSError, ValueError):
                        continue
                    if stat.S_ISREG(mode):
                        return True
        return False
