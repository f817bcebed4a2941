"""What a workflow's check depends on besides its own text: the refs its tasks may call and,
for a workflow file an action names with ``workflow_file`` (Attune's action-linked layout),
the fields that action file supplies."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

# The fields an action file supplies to the workflow file it links (Attune's pack loader,
# crates/common/src/pack_registry/loader.rs, load_workflow_for_action).
LINKED_FIELDS = ("label", "description", "parameters", "output", "tags")


@dataclass(frozen=True, slots=True)
class Link:
    """An action file naming a workflow file with ``workflow_file``."""

    action_file: str  # its path in the pack, e.g. actions/deploy.yaml
    ref: str  # the action's ref
    fields: dict[str, Any]  # the LINKED_FIELDS it sets


@dataclass(frozen=True, slots=True)
class Known:
    """What a workflow's tasks may call (action and workflow refs known to exist: every
    workflow is an action too, as in Attune) and the links of action-linked workflow files
    (path of the workflow file in the pack -> its action)."""

    actions: Collection[str] = ()
    workflows: Collection[str] = ()
    links: Mapping[str, Link] = field(default_factory=dict)
