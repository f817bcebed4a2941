"""Task names, defined once: the producer sends them, the worker registers them."""

from __future__ import annotations

import enum


class TaskName(enum.StrEnum):
    PING = "system.ping"
    # one task per job kind: the task name is the job kind's entry point
    SYNC = "packs.sync_workflows"
    VALIDATE = "packs.validate_workflows"
    PLAN = "packs.plan_workflows"
    PUSH = "packs.push_version"
    # a large pack's sync: one task per slice of files, then one that registers them all
    SYNC_CHUNK = "packs.sync_chunk"
    SYNC_FINISH = "packs.sync_finish"
    # a bulk sync: several packs' sync jobs in one task, one after the other
    SYNC_GROUP = "packs.sync_group"
