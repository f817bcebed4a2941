"""Every table, imported in one place (Alembic's metadata, test truncation)."""

from sqlmodel import SQLModel

from attune.access.models import ApiKey
from attune.actions.models import Action
from attune.auth.models import RefreshToken
from attune.bundles.models import PackBlob, PackBlobChunk, PackVersion
from attune.jobs.models import Job, JobLease
from attune.packs.models import Pack
from attune.revisions.models import WorkflowRevision
from attune.sync.models import PackFile, SyncChunk, SyncStaging
from attune.users.models import User
from attune.workflows.models import WorkflowDefinition

metadata = SQLModel.metadata

__all__ = [
    "Action",
    "ApiKey",
    "Job",
    "JobLease",
    "Pack",
    "PackBlob",
    "PackBlobChunk",
    "PackFile",
    "PackVersion",
    "RefreshToken",
    "SyncChunk",
    "SyncStaging",
    "User",
    "WorkflowDefinition",
    "WorkflowRevision",
    "metadata",
]
