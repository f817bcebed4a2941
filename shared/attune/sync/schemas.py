"""What a sync or validate job returns: the typed results the engine builds, the worker
stores, the API answers and the CLI prints (SPEC section 2)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from attune.revisions.content import StructuralSummary

if TYPE_CHECKING:
    from attune.workflows.checker import PackReport

DIRECTORY_NOT_FOUND = "Failed to load workflows: Directory not found"
SYNCED_MESSAGE = "Pack workflows synced successfully"
VALIDATED_MESSAGE = "Pack workflows validated"
PLANNED_MESSAGE = "Plan of the pack's sync (dry run): nothing was written"

SYNC_EXAMPLE: dict[str, Any] = {
    "pack_ref": "my_pack",
    "loaded_count": 5,
    "registered_count": 5,
    "workflows": [
        {
            "ref_name": "my_pack.deploy_app",
            "ref": "my_pack.deploy_app",
            "created": True,
            "workflow_def_id": 123,
            "warnings": [],
        }
    ],
    "errors": [],
}
VALIDATE_EXAMPLE: dict[str, Any] = {
    "pack_ref": "my_pack",
    "validated_count": 5,
    "error_count": 1,
    "errors": {
        "my_pack.broken_workflow": [
            "Missing required field: version",
            "Task 'step1' references undefined action 'invalid.action'",
        ]
    },
}
Diagnostics = list[dict[str, Any]]
_DIAGNOSTICS = "Structured diagnostics: severity, code, message, file, line, column, path"


class WorkflowSyncEntry(BaseModel):
    ref_name: str = Field(description="The workflow's ref (the original API's name for it)")
    ref: str = Field(description="The same ref, under the name workflow resources use")
    created: bool = Field(description="True for a workflow this sync created, false for an updated or unchanged one")
    workflow_def_id: int
    warnings: list[str]
    diagnostics: Diagnostics = Field(default_factory=list, description=_DIAGNOSTICS)
    changed: bool = Field(
        default=True,
        description="True when this sync created the workflow or changed its stored definition (or warnings); "
        "false when what is stored is what it was",
    )


_ENTRY_FIELDS = frozenset(WorkflowSyncEntry.model_fields)


def trusted_entry(
    *, ref: str, created: bool, workflow_def_id: int, diagnostics: Diagnostics, changed: bool
) -> WorkflowSyncEntry:
    """A ``WorkflowSyncEntry`` built without validation, from values the engine read from rows
    it wrote (one per workflow: ten thousand of them in a large pack's result, where
    ``model_construct`` alone cost 0.15 s). Equal to the validated model
    (tests/unit/test_sync_schemas.py)."""
    entry = object.__new__(WorkflowSyncEntry)
    values = {
        "ref_name": ref, "ref": ref, "created": created, "workflow_def_id": workflow_def_id,
        "warnings": [d["message"] for d in diagnostics], "diagnostics": diagnostics, "changed": changed,
    }  # fmt: skip
    object.__setattr__(entry, "__dict__", values)
    object.__setattr__(entry, "__pydantic_fields_set__", _ENTRY_FIELDS)
    object.__setattr__(entry, "__pydantic_extra__", None)
    object.__setattr__(entry, "__pydantic_private__", None)
    return entry


class ActionsSummary(BaseModel):
    registered: list[str] = Field(default_factory=list, description="Action refs registered from actions/")
    errors: list[str] = Field(default_factory=list, description="One sentence per action file that did not register")
    diagnostics: dict[str, Diagnostics] = Field(
        default_factory=dict, description="Every diagnostic of each action that did not register, by ref"
    )


class SyncResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SYNC_EXAMPLE]})

    pack_ref: str
    loaded_count: int = Field(description="Workflow files found and read")
    registered_count: int = Field(description="Workflows created, updated or unchanged (registered)")
    workflows: list[WorkflowSyncEntry]
    errors: list[str] = Field(description="One sentence per workflow that did not register, naming it")
    error_diagnostics: dict[str, Diagnostics] = Field(
        default_factory=dict, description="Every diagnostic of each workflow that did not register, by ref"
    )
    removed: list[str] = Field(default_factory=list, description="Workflows deleted because their file is gone")
    unchanged_count: int = Field(default=0, description="Files not read again: unchanged since the last sync")
    actions: ActionsSummary = Field(default_factory=ActionsSummary)
    notes: Diagnostics = Field(default_factory=list, description="What the pack's listing had to say (skipped files)")
    pack_dir: str | None = Field(
        default=None, description="The directory the server looked in, when it could not be used (errors say why)"
    )
    job_id: uuid.UUID | None = None

    @classmethod
    def refused(cls, pack_ref: str, reason: str, pack_dir: str | None = None) -> SyncResult:
        """Nothing read, nothing changed: the pack directory (or one of its folders) cannot be used."""
        return cls(
            pack_ref=pack_ref, loaded_count=0, registered_count=0, workflows=[], errors=[reason], pack_dir=pack_dir
        )


class ValidateResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [VALIDATE_EXAMPLE]})

    pack_ref: str
    validated_count: int
    error_count: int = Field(description="Workflows with at least one error")
    errors: dict[str, list[str]] = Field(description="Every error message of each invalid workflow, by ref")
    diagnostics: dict[str, Diagnostics] = Field(default_factory=dict, description=_DIAGNOSTICS + ", by ref")
    warning_count: int = 0
    notes: Diagnostics = Field(default_factory=list, description="Pack-level diagnostics (listing, actions)")
    pack_dir: str | None = Field(
        default=None, description="The directory the server looked in, when it could not be used (errors say why)"
    )
    job_id: uuid.UUID | None = None

    @classmethod
    def refused(cls, pack_ref: str, reason: str, pack_dir: str | None = None) -> ValidateResult:
        # counted as an error, so that a pipeline gating on error_count stops here
        return cls(pack_ref=pack_ref, validated_count=0, error_count=1, errors={pack_ref: [reason]}, pack_dir=pack_dir)


def validate_result(report: PackReport) -> ValidateResult:
    """A checked pack as a validate job answers it, and as the offline ``attune validate`` prints it."""
    results = report.workflows
    notes = [*report.notes, *(d for a in report.actions for d in a.diagnostics)]
    return ValidateResult(
        pack_ref=report.pack_ref,
        validated_count=len(results),
        error_count=report.error_count,
        errors={r.ref: [d.message for d in r.errors] for r in results if not r.ok},
        diagnostics={r.ref: [d.to_dict() for d in r.diagnostics] for r in results if r.diagnostics},
        warning_count=sum(len(r.warnings) for r in results),
        notes=[d.to_dict() for d in notes],
    )


PLAN_CHANGES = ("create", "update", "unchanged", "remove", "error")


class PlanEntry(BaseModel):
    ref: str
    change: str = Field(description="create, update, unchanged, remove or error")
    revision: int | None = Field(
        default=None, description="The revision the sync would write (create, update, remove; workflows only)"
    )
    summary: StructuralSummary | None = Field(
        default=None, description="Workflows created or updated: tasks added, removed, changed; fields changed"
    )
    diff: str | None = Field(
        default=None, description="Updated workflows: unified diff of the normalised YAML, registered -> files"
    )
    diagnostics: Diagnostics = Field(default_factory=list, description="Errors: every diagnostic")


class PlanResult(BaseModel):
    """What a sync of the pack would do now: computed by running it, then rolling it back."""

    pack_ref: str
    loaded_count: int = Field(description="Workflow files found")
    counts: dict[str, int] = Field(description="Workflows by change: create, update, unchanged, remove, error")
    workflows: list[PlanEntry] = Field(description="One entry per workflow, by ref")
    actions: list[PlanEntry] = Field(description="One entry per action, by ref")
    errors: list[str] = Field(description="The sync's error sentences (a workflow that would not register)")
    notes: Diagnostics = Field(default_factory=list, description="What the pack's listing had to say")
    job_id: uuid.UUID | None = None


class PushResult(BaseModel):
    """What a pushed version's job did: its plan against the live registry, and whether the
    pack now syncs from it (``activated``: the sync of the plan was kept)."""

    pack_ref: str
    version_id: int
    sha256: str
    activated: bool
    outcome: str = Field(description="activated, validated (not asked to activate) or refused (the plan has errors)")
    reason: str = Field(description="Why, in a sentence")
    plan: PlanResult
    synced: dict[str, Any] | None = Field(default=None, description="The sync's counts when activated")
    job_id: uuid.UUID | None = None


JobResult = SyncResult | ValidateResult | PlanResult | PushResult


def summarise(result: JobResult) -> dict[str, Any]:
    """The counts of a result: what a job listing shows."""
    if isinstance(result, PushResult):
        return {"version_id": result.version_id, "outcome": result.outcome, **summarise(result.plan)}
    if isinstance(result, PlanResult):
        return {**result.counts, "loaded_count": result.loaded_count, "error_count": len(result.errors)}
    if isinstance(result, SyncResult):
        return {
            "loaded_count": result.loaded_count, "registered_count": result.registered_count,
            "error_count": len(result.errors), "removed_count": len(result.removed),
            "unchanged_count": result.unchanged_count,
        }  # fmt: skip
    return {"validated_count": result.validated_count, "error_count": result.error_count,
            "warning_count": result.warning_count}  # fmt: skip


def dump_result(result: JobResult) -> orjson.Fragment:
    """The JSON a job row stores, serialised by pydantic-core straight to text (a fragment
    that the engine's JSON serialiser, orjson, writes as it is): no Python dicts in between,
    which cost 0.2 s for a 10,000-workflow result in a worker's heap."""
    return orjson.Fragment(result.model_dump_json())


def envelope_json(result_json: str, message: str) -> bytes:
    """``{"data": <result>, "message": ...}`` from a stored result's JSON text, without decoding
    it (a 10,000-workflow result is megabytes). The bytes equal the envelope model's
    serialisation (tests/unit/test_sync_schemas.py)."""
    return b'{"data":' + result_json.encode() + b',"message":' + orjson.dumps(message) + b"}"
