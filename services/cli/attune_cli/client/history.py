"""`attune pack plan`, `attune workflow history`, `attune workflow diff`: what a sync would
do before it runs, and what changed when after it ran.

On a terminal the plan and diffs are coloured; piped, they are plain text; --json prints
the API's JSON. `attune pack plan` exits 0 when the sync would apply cleanly, 1 when some
workflow has errors (the other codes: README, "CLI reference")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from attune.sync.schemas import PLANNED_MESSAGE, PlanEntry, PlanResult
from attune_cli.client.api import EXIT_FOUND_ERRORS, EXIT_OK
from attune_cli.client.commands import (
    JsonOpt,
    ProgressOpt,
    ServerOpt,
    TimeoutOpt,
    _client,
    _failed,
    _print_json,
    _run_job,
    _table,
    _where,
    out,
)

workflow_app = typer.Typer(no_args_is_help=True, help="Registered workflows: their history and its diffs.")

_SIGNS = {"create": ("+", "green"), "update": ("~", "yellow"), "remove": ("-", "red"), "error": ("!", "red")}
_VERBS = {"create": "will be created", "update": "will be updated", "remove": "will be removed",
          "error": "has errors: will not register"}  # fmt: skip


def _print_diff(diff: str, indent: str = "") -> None:
    for line in diff.splitlines():
        style = None
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        out.print(indent + line, style=style, markup=False, highlight=False)


def _summary_text(entry: PlanEntry) -> str:
    s = entry.summary
    if s is None:
        return ""
    parts = [f"{what} {', '.join(names)}" for what, names in (
        ("tasks added:", s.tasks_added), ("tasks removed:", s.tasks_removed),
        ("tasks changed:", s.tasks_changed), ("fields changed:", s.fields_changed)) if names]  # fmt: skip
    return "; ".join(parts)


def _print_entry(kind: str, entry: PlanEntry) -> None:
    sign, style = _SIGNS[entry.change]
    revision = f" (revision {entry.revision})" if entry.revision else ""
    out.print(f"  {sign} {kind} {entry.ref} {_VERBS[entry.change]}{revision}", style=style, markup=False)
    if entry.change == "update":
        summary = _summary_text(entry)
        if summary:
            out.print(f"      {summary}", markup=False)
        _print_diff(entry.diff or "", indent="      ")
    for d in entry.diagnostics:
        if d.get("severity", "error") == "error":
            out.print(f"      {_where(d)} {d.get('code', '')}: {d['message']}", markup=False)


def print_plan(p: PlanResult) -> None:
    changed = [e for e in p.workflows if e.change != "unchanged"]
    actions = [e for e in p.actions if e.change != "unchanged"]
    if not changed and not actions and not p.errors:
        out.print(f"No changes. Pack {p.pack_ref}'s registry matches its files.")
    else:
        out.print(f"A sync of pack {p.pack_ref} would:")
        for entry in changed:
            _print_entry("workflow", entry)
        for entry in actions:
            _print_entry("action", entry)
        listed = {e.ref for e in changed}
        for sentence in p.errors:  # those of no workflow: the pack's directory itself
            if not any(sentence.startswith(f"Validation failed for {ref}:") for ref in listed):
                out.print(f"  ! {sentence}", style="red", markup=False)
    c = p.counts
    out.print(
        f"Plan: {c.get('create', 0)} to create, {c.get('update', 0)} to update, {c.get('remove', 0)} to remove, "
        f"{c.get('unchanged', 0)} unchanged, {c.get('error', 0)} with errors.",
        style="bold",
        markup=False,
    )


def pack_plan(
    ref: str,
    full: Annotated[bool, typer.Option(help="Read every file, even unchanged ones (as sync --full)")] = False,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """What a sync of the pack would do, without doing it. Exit 1 if some workflow has errors."""
    params = {"dry_run": "true", **({"full": "true"} if full else {})}
    result, failed = _run_job(ref, "sync", params, server, timeout, progress and not as_json)
    if failed is not None:
        _failed(failed, as_json)
    planned = PlanResult.model_validate(result)
    if as_json:
        _print_json({"data": result, "message": PLANNED_MESSAGE})  # the API's answer, envelope included
    else:
        print_plan(planned)
    raise typer.Exit(EXIT_FOUND_ERRORS if planned.errors else EXIT_OK)


@workflow_app.command("history")
def workflow_history(
    ref: str,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Revisions per page")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Revisions to skip")] = 0,
) -> None:
    """A workflow's revisions, newest first: who changed it, when, by which job."""
    with _client(server) as client:
        body = client.get(f"/api/v1/workflows/{ref}/revisions", limit=limit, offset=offset)
    if as_json:
        return _print_json(body)
    rows = [[r["number"], r["change"], r["author"], r["created_at"][:19], r["job_id"], r["source_file"],
             (r["definition_hash"] or "")[:12]] for r in body["data"]]  # fmt: skip
    _table(["REV", "CHANGE", "AUTHOR", "WHEN", "JOB", "FILE", "HASH"], rows, title=f"history of {ref}")
    total = body["pagination"]["total"]
    if total > offset + len(rows):
        out.print(f"{len(rows)} of {total} revisions (--offset {offset + len(rows)} for more)")


def _latest(client: Any, ref: str) -> int:
    return int(client.get(f"/api/v1/workflows/{ref}/revisions", limit=1)["data"][0]["number"])


@workflow_app.command("diff")
def workflow_diff(
    ref: str,
    number: Annotated[int | None, typer.Argument(help="Revision to show (default: the latest)", min=1)] = None,
    against: Annotated[
        int | None, typer.Argument(help="Revision to compare with (default: the one before)", min=1)
    ] = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What a revision changed: `attune workflow diff REF [N [M]]` (N against M)."""
    with _client(server) as client:
        n = _latest(client, ref) if number is None else number
        body = client.get(f"/api/v1/workflows/{ref}/revisions/{n}/diff", against=against)
    if as_json:
        return _print_json(body)
    d = body["data"]
    s = d["summary"]
    parts = [f"{what} {', '.join(s[key])}" for what, key in (
        ("tasks added:", "tasks_added"), ("tasks removed:", "tasks_removed"),
        ("tasks changed:", "tasks_changed"), ("fields changed:", "fields_changed")) if s[key]]  # fmt: skip
    out.print(f"{ref}: revision {d['against'] or 'none'} -> {d['number']}", style="bold", markup=False)
    out.print("; ".join(parts) if parts else "no change", markup=False)
    _print_diff(d["diff"])
