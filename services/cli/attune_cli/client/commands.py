"""`attune login`, `attune pack ...`, `attune job show`: the command line as a client of a server.

Output is a readable table or summary on a terminal, and the API's JSON with --json
(for scripts): the body the API answers, ``{"data": ..., "message": ...}``. Exit codes are
those of ``attune_cli.client.api`` (README: CLI reference). Lines are never wrapped when
the output is not a terminal (CI logs stay greppable).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from attune.sync.schemas import SYNCED_MESSAGE, VALIDATED_MESSAGE, SyncResult, ValidateResult
from attune_cli.client.api import EXIT_FOUND_ERRORS, EXIT_OK, EXIT_USAGE, Client, ClientError
from attune_cli.client.config import CliConfig

pack_app = typer.Typer(no_args_is_help=True, help="Packs on an Attune server (log in first: attune login).")
job_app = typer.Typer(no_args_is_help=True, help="Sync and validate jobs on an Attune server.")


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 100_000  # a pipe or a log: tables and lines whole, never cut at 80 columns
    return console


out = _console()
err = _console(stderr=True)

ServerOpt = Annotated[
    str | None,
    typer.Option("--server", "-s", help="Server URL (default: $ATTUNE_SERVER, else that of the last login)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables (for scripts)")]


@contextmanager
def _client(server: str | None) -> Iterator[Client]:
    try:
        with Client(CliConfig(), server) as client:
            yield client
    except ClientError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}", markup=True, highlight=False)
        raise typer.Exit(exc.exit_code) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 warning``, ``2 warnings``, ``0 errors``."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def _shown(value: Any) -> str:
    """A value as a person reads it: no Python reprs (None, lists, dicts)."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else _shown(v) for v in row))
    out.print(table)


def login(
    server: ServerOpt = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Login (prompted for when missing)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Log in to a server and keep the tokens in the CLI configuration file (mode 0600)."""
    if password_stdin and not user:
        _usage("--password-stdin reads the password from stdin: give the login with --user LOGIN")
    login_name = user or typer.prompt("Login")
    if not login_name.strip():
        _usage("no login given")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else getpass.getpass("Password: ")
    if not password:
        _usage("no password given" + (" (stdin was empty)" if password_stdin else ""))
    with _client(server) as client:
        client.login(login_name, password)
        err.print(f"Logged in to {client.server} as {login_name} (token kept in {client.config.path})")


def _usage(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(EXIT_USAGE)


def logout(server: ServerOpt = None) -> None:
    """Revoke the session on the server and forget the tokens kept for it."""
    with _client(server) as client:
        found = client.logout()
        err.print(f"Logged out of {client.server}" if found else f"Not logged in to {client.server}")


@pack_app.command("list")
def pack_list(
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Packs per page")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Packs to skip")] = 0,
) -> None:
    """List packs."""
    with _client(server) as client:
        body = client.get("/api/v1/packs", limit=limit, offset=offset)
    if as_json:
        return _print_json(body)
    rows = [[p["ref"], p["label"], p["version"], ", ".join(p["tags"]), p["updated_at"][:19]] for p in body["data"]]
    _table(["REF", "LABEL", "VERSION", "TAGS", "UPDATED"], rows)
    total = body["pagination"]["total"]
    err.print(
        f"{len(rows)} of {total} packs"
        + (f" (--offset {offset + len(rows)} for more)" if total > offset + len(rows) else "")
    )


@pack_app.command("show")
def pack_show(ref: str, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Show a pack, its registered workflows and its last jobs."""
    with _client(server) as client:
        pack = client.get(f"/api/v1/packs/{ref}")["data"]
        workflows = client.get("/api/v1/workflows", pack=ref, limit=500)
        jobs = client.get(f"/api/v1/packs/{ref}/jobs", limit=5)
    if as_json:
        shown = {"pack": pack, "workflows": workflows["data"], "jobs": jobs["data"]}
        return _print_json({"data": shown, "message": f"Pack {ref}, its workflows and its last jobs"})
    for key in ("ref", "label", "version", "description", "tags", "meta", "created_at", "updated_at"):
        out.print(f"[bold]{key:>12}[/bold]  {_shown(pack.get(key))}")
    rows = [[w["ref"], w["version"], w["tags"], w["description"]] for w in workflows["data"]]
    total = workflows["pagination"]["total"]
    _table(["WORKFLOW", "VERSION", "TAGS", "DESCRIPTION"], rows, title=plural(total, "workflow"))
    job_rows = [[j["id"], j["kind"], j["trigger"], j["status"], j.get("started_by"), j["created_at"][:19]]
                for j in jobs["data"]]  # fmt: skip
    title = f"last {plural(len(job_rows), 'job')}"
    _table(["JOB", "KIND", "TRIGGER", "STATUS", "BY", "CREATED"], job_rows, title=title)


def _pack_body(label: str | None, version: str | None, description: str | None, tags: list[str] | None,
               meta: str | None) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"label": label, "version": version, "description": description, "tags": tags}
    if meta is not None:
        try:
            body["meta"] = json.loads(meta)
        except ValueError as exc:
            err.print(f"[red]error:[/red] --meta is not JSON: {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from None
    return {k: v for k, v in body.items() if v is not None}


LabelOpt = Annotated[str | None, typer.Option(help="Human name")]
VersionOpt = Annotated[str | None, typer.Option(help="Pack version")]
DescOpt = Annotated[str | None, typer.Option(help="Description")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable; replaces the tags)")]
MetaOpt = Annotated[str | None, typer.Option(help="Free metadata, as a JSON object")]


def _saved(body: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return _print_json(body)
    pack = body["data"]
    out.print(f"{body['message']}")
    out.print(f"pack {pack['ref']} ({pack['label']}, version {pack['version']})")
    if body.get("job_id"):
        err.print(f"follow the auto-sync with: attune job show {body['job_id']}")


@pack_app.command("create")
def pack_create(
    ref: str,
    label: LabelOpt = None,
    version: VersionOpt = None,
    description: DescOpt = None,
    tag: TagOpt = None,
    meta: MetaOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a pack (its files are read from the server's packs directory, ref as folder name).
    Label, version and description not given come from the pack's pack.yaml on the server."""
    body = {"ref": ref, **_pack_body(label, version, description, tag, meta)}
    with _client(server) as client:
        _saved(client.request("POST", "/api/v1/packs", ok=(201,), json=body).json(), as_json)


@pack_app.command("update")
def pack_update(
    ref: str,
    label: LabelOpt = None,
    version: VersionOpt = None,
    description: DescOpt = None,
    tag: TagOpt = None,
    meta: MetaOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change some of a pack's fields (then the server re-syncs it)."""
    body = _pack_body(label, version, description, tag, meta)
    if not body:
        err.print(
            "[red]error:[/red] nothing to update: give at least one of --label --version --description --tag --meta"
        )
        raise typer.Exit(EXIT_USAGE)
    with _client(server) as client:
        _saved(client.request("PUT", f"/api/v1/packs/{ref}", json=body).json(), as_json)


@pack_app.command("delete")
def pack_delete(
    ref: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    server: ServerOpt = None,
) -> None:
    """Delete a pack and its registered workflows (the files stay on disk)."""
    with _client(server) as client:
        client.get(f"/api/v1/packs/{ref}")  # logged in, and the pack exists: then ask
        if not yes and not typer.confirm(f"Delete pack {ref} and its workflows?"):
            raise typer.Exit(EXIT_FOUND_ERRORS)
        client.request("DELETE", f"/api/v1/packs/{ref}", ok=(204,))
    err.print(f"Pack {ref} deleted")


def _progress_bar(enabled: bool) -> tuple[Progress | None, Callable[[dict[str, Any]], None]]:
    if not enabled:
        return None, lambda job: None
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )  # fmt: skip
    task = bar.add_task("queued", total=None)

    def update(job: dict[str, Any]) -> None:
        progress = job.get("progress") or {}
        bar.update(task, description=job["status"], completed=progress.get("done", 0), total=progress.get("total"))

    return bar, update


def _run_job(ref: str, action: str, params: dict[str, Any], server: str | None, timeout: float | None,
             show_progress: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """Starts the job, follows it; returns (result, failed job or None)."""
    with _client(server) as client:
        started = client.start_job(ref, action, {**params, "wait": 2 if timeout is None else min(2, timeout)})
        if started["status_code"] == 200:
            return started["data"], None
        job_id = started["data"]["job_id"]
        bar, update = _progress_bar(show_progress and err.is_terminal)
        if bar is not None:
            with bar:
                job = client.wait_job(job_id, timeout, update)
        else:
            job = client.wait_job(job_id, timeout)
    if job["status"] == "failed":
        return {}, job
    return job["result"], None


def _failed(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json({"error": job["error"], "job": job})
    else:
        err.print(f"[red]error:[/red] job {job['id']} failed: {escape(str(job['error']))}")
    raise typer.Exit(EXIT_FOUND_ERRORS)


TimeoutOpt = Annotated[
    float | None, typer.Option(help="Give up waiting after this many seconds (exit 6); default: wait")
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on a terminal")]


@pack_app.command("sync")
def pack_sync(
    ref: str,
    full: Annotated[bool, typer.Option(help="Re-read every file, even unchanged ones")] = False,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Load, validate and register a pack's workflows. Exit 1 if any workflow did not register."""
    result, failed = _run_job(ref, "sync", {"full": "true"} if full else {}, server, timeout, progress and not as_json)
    if failed is not None:
        _failed(failed, as_json)
    if as_json:
        _print_json({"data": result, "message": SYNCED_MESSAGE})
    synced = SyncResult.model_validate(result)
    if not as_json:
        new = sum(1 for w in synced.workflows if w.created)
        updated = sum(1 for w in synced.workflows if w.changed and not w.created)
        same = len(synced.workflows) - new - updated
        out.print(
            f"pack {synced.pack_ref}: {plural(synced.loaded_count, 'file')}, {synced.registered_count} registered "
            f"({new} new, {updated} updated, {same} unchanged), {plural(len(synced.errors), 'error')}, "
            f"{len(synced.removed)} removed"
        )
        if synced.pack_dir:
            out.print(f"  looked in {synced.pack_dir}")
        for ref_name in synced.removed:
            out.print(f"  removed {ref_name}")
        _print_diagnostics(synced.error_diagnostics, synced.errors)
        for w in synced.workflows:
            _print_warnings(w.ref_name, w.diagnostics, w.warnings)
    raise typer.Exit(EXIT_FOUND_ERRORS if synced.errors else EXIT_OK)


@pack_app.command("validate")
def pack_validate(
    ref: str,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Check a pack's workflows on the server without registering them. Exit 1 on errors."""
    result, failed = _run_job(ref, "validate", {}, server, timeout, progress and not as_json)
    if failed is not None:
        _failed(failed, as_json)
    if as_json:
        _print_json({"data": result, "message": VALIDATED_MESSAGE})
    checked = ValidateResult.model_validate(result)
    if not as_json:
        out.print(
            f"pack {checked.pack_ref}: {plural(checked.validated_count, 'workflow')} checked, "
            f"{checked.error_count} with errors, {plural(checked.warning_count, 'warning')}"
        )
        if checked.pack_dir:
            out.print(f"  looked in {checked.pack_dir}")
        for ref_name, messages in checked.errors.items():
            located = [d for d in checked.diagnostics.get(ref_name, []) if d.get("severity") == "error"]
            if located:
                for d in located:
                    out.print(f"  [red]error[/red] {_where(d)} {d['code']}: {d['message']}")
            else:
                for message in messages:
                    out.print(f"  [red]error[/red] {ref_name}: {message}")
        for ref_name, diags in checked.diagnostics.items():
            _print_warnings(ref_name, diags, [])
    raise typer.Exit(EXIT_FOUND_ERRORS if checked.error_count else EXIT_OK)


def _where(d: dict[str, Any]) -> str:
    place = d.get("file") or ""
    if d.get("line"):
        place += f":{d['line']}" + (f":{d['column']}" if d.get("column") else "")
    return place


def _print_warnings(ref: str, diagnostics: list[dict[str, Any]], messages: list[str]) -> None:
    """A workflow's warnings, located like its errors (file:line:column code: message)."""
    located = [d for d in diagnostics if d.get("severity") == "warning"]
    for d in located:
        out.print(f"  [yellow]warning[/yellow] {_where(d) or ref} {d.get('code', '')}: {d['message']}")
    if not located:
        for message in messages:
            out.print(f"  [yellow]warning[/yellow] {ref}: {message}")


def _print_diagnostics(by_ref: dict[str, Any], errors: list[str]) -> None:
    if not by_ref:
        for sentence in errors:
            out.print(f"  [red]error[/red] {sentence}")
        return
    for diags in by_ref.values():
        for d in diags:
            if d.get("severity", "error") == "error":
                out.print(f"  [red]error[/red] {_where(d)} {d.get('code', '')}: {d['message']}")


@job_app.command("show")
def job_show(
    job_id: str,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    wait: Annotated[bool, typer.Option(help="Wait until the job finishes")] = False,
) -> None:
    """Show a job's status and progress (exit 1 if it failed)."""
    with _client(server) as client:
        job = client.wait_job(job_id, None) if wait else client.get(f"/api/v1/jobs/{job_id}")["data"]
    if as_json:
        _print_json({"data": job})
    else:
        p = job["progress"]
        total = "?" if p.get("total") is None else p["total"]
        out.print(f"job {job['id']}: {job['kind']} of {job['pack_ref']} ({job['trigger']}), {job['status']}, "
                  f"{p.get('done', 0)}/{total} files, attempts {job['attempts']}, "
                  f"started by {_shown(job.get('started_by'))}")  # fmt: skip
        if job.get("error"):
            out.print(f"  [red]error[/red] {job['error']}")
    raise typer.Exit(EXIT_FOUND_ERRORS if job["status"] == "failed" else EXIT_OK)
