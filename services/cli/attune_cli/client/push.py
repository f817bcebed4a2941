"""`attune pack push DIR`, `attune pack versions REF`, `attune pack rollback REF VERSION`:
packs pushed to the server as versioned archives.

`push` builds a .tar.gz of the directory (files listed by a `.attuneignore` in gitignore
syntax left out, `.git/` and links never included; names sorted, times and owners zeroed,
so that the same files give the same archive and the server stores it once), uploads it
with a progress bar, prints the plan and the outcome. Exit codes as for `attune pack
sync`: 0 activated (or validated with --no-activate), 1 the plan has errors (the version
is stored, not activated) or the job failed; 2-6 as every command (README, "CLI reference")."""

from __future__ import annotations

import gzip
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from attune.sync.schemas import PlanResult, PushResult
from attune_cli.client.api import EXIT_FOUND_ERRORS, EXIT_OK, EXIT_USAGE
from attune_cli.client.commands import (
    JsonOpt,
    ProgressOpt,
    ServerOpt,
    TimeoutOpt,
    _client,
    _failed,
    _print_json,
    _table,
    err,
    out,
    plural,
)
from attune_cli.client.history import print_plan

IGNORE_FILE = ".attuneignore"
READ_BYTES = 256 * 1024
# the folders a sync reads workflows and actions from (sync/engine.py): as a link, the server
# refuses them in a pack directory ("nothing changed"); left out of an archive, they would
# have removed every workflow of the pack
PACK_FOLDERS = ("workflows", "actions", "actions/workflows")


class Unpushable(Exception):
    """The directory cannot be pushed as it is (a usage error: nothing is sent)."""


class LinkedFolder(Unpushable):
    """A folder the sync reads is a symbolic link: nothing is pushed."""


def _ignore_lines(root: Path) -> list[str]:
    path = root / IGNORE_FILE
    try:
        return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    except UnicodeDecodeError:
        raise Unpushable(f"'{IGNORE_FILE}' is not UTF-8 text") from None


@dataclass(frozen=True, slots=True)
class Rule:
    """One .attuneignore line, as git applies a .gitignore line (gitignore(5))."""

    regex: re.Pattern[str]
    whole_path: bool  # matched against the path from the root, else against the last name
    folders_only: bool  # a trailing "/"
    leaves_out: bool  # False: "!" re-includes


class Ignore:
    """The .attuneignore of a pack directory, read as git reads a .gitignore at its root.

    Git's semantics, implemented here rather than borrowed: pathspec's gitignore patterns
    are made for file paths (a folder pattern also matches what is under the folder, and
    'x/**' the folder x itself), which made an allow-list ('*', '!workflows/',
    '!workflows/*') push pack.yaml alone, 'workflows/**' with '!workflows/*.yaml' push no
    workflow, and '*/' with '!workflows/' push what git leaves out. A folder left out is
    not walked (a file under it cannot be re-included); the last rule matching a path
    decides; tests/unit/test_push_archive.py compares the outcome with git ls-files."""

    def __init__(self, lines: list[str]) -> None:
        self.rules = [rule for line in lines if (rule := _rule(line)) is not None]

    def leaves_out(self, rel: str, *, folder: bool) -> bool:
        name = rel.rsplit("/", 1)[-1]
        out = False
        for rule in self.rules:
            if (folder or not rule.folders_only) and rule.regex.fullmatch(rel if rule.whole_path else name):
                out = rule.leaves_out
        return out


def ignored(root: Path) -> Ignore:
    return Ignore(_ignore_lines(root))


def _rule(line: str) -> Rule | None:
    """``!`` re-includes; a trailing ``/`` is for folders only; a pattern with a ``/``
    elsewhere is matched against the whole path, one without against the name; ``*``, ``?``
    and ``[...]`` stop at ``/``, ``**`` does not; ``\\`` escapes; ``#`` starts a comment."""
    if not line.strip() or line.startswith("#"):
        return None
    pattern = re.sub(r"(?<!\\) +$", "", line)  # trailing spaces, unless escaped
    leaves_out = not pattern.startswith("!")
    if not leaves_out:
        pattern = pattern[1:]
    folders_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    whole_path = "/" in pattern
    pattern = pattern.lstrip("/")
    if not pattern:
        return None
    return Rule(re.compile(_wildmatch(pattern), re.DOTALL), whole_path, folders_only, leaves_out)


def _wildmatch(pattern: str) -> str:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            at_start, at_end = i == 0 or pattern[i - 1] == "/", i + 2 == n or pattern[i + 2] == "/"
            if at_start and at_end and i + 2 == n:
                out.append(".*")  # "a/**": everything inside a
                i += 2
            elif at_start and at_end:
                out.append("(?:.*/)?")  # "**/": any folders, or none
                i += 3
            else:
                out.append("[^/]*")  # "**" within a name: as "*"
                i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + (3 if pattern[i + 1 : i + 2] in ("!", "^") else 2))) != -1:
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body[:1] in ("!", "^") else body
            out.append("(?!/)[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def pack_paths(root: Path) -> Iterator[str]:
    """The files to archive, relative, sorted: what .attuneignore does not exclude (.git/
    never)."""
    ignore = ignored(root)
    for current, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(current, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for d in sorted(dirs):
            if d == ".git" or ignore.leaves_out(rel_dir + d, folder=True):
                continue
            if (Path(current) / d).is_symlink():
                if rel_dir + d in PACK_FOLDERS:
                    raise LinkedFolder(
                        f"'{rel_dir}{d}/' is a symbolic link (links are not pushed): pushing without it would "
                        "remove the pack's workflows; make it a folder"
                    )
                err.print(f"[yellow]skipped[/yellow] {escape(rel_dir + d)}/: a link to a folder (links are not pushed)")
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            rel = rel_dir + name
            if ignore.leaves_out(rel, folder=False):
                continue
            if not stat.S_ISREG(os.lstat(Path(current) / name).st_mode):
                err.print(f"[yellow]skipped[/yellow] {escape(rel)}: not a regular file (links are not pushed)")
                continue
            yield rel


def build_archive(root: Path, dest: Path) -> int:
    """Writes the pack's .tar.gz to ``dest`` (reproducible); the number of files in it."""
    count = 0
    with (
        dest.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,  # type: ignore[call-overload]
    ):
        for rel in sorted(pack_paths(root)):
            info = tarfile.TarInfo(rel)
            info.size = (root / rel).stat().st_size
            info.mode = 0o644
            with (root / rel).open("rb") as fh:
                tf.addfile(info, fh)
            count += 1
    return count


def manifest_ref(root: Path) -> str | None:
    try:
        data = yaml.safe_load((root / "pack.yaml").read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return str(ref) if ref else None


def _chunks(path: Path, bar: Progress | None) -> Iterator[bytes]:
    task = bar.add_task("uploading", total=path.stat().st_size) if bar is not None else None
    with path.open("rb") as fh:
        while data := fh.read(READ_BYTES):
            if bar is not None and task is not None:
                bar.update(task, advance=len(data))
            yield data


def _settle(client: Any, started: dict[str, Any], timeout: float | None) -> tuple[dict[str, Any], dict | None]:
    if started["status_code"] == 200:
        return started["data"], None
    job = client.wait_job(started["data"]["job_id"], timeout)
    return (job["result"], None) if job["status"] == "succeeded" else ({}, job)


def _print_outcome(result: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        _print_json({"data": result, "message": message})
        return
    pushed = PushResult.model_validate(result)
    print_plan(PlanResult.model_validate(result["plan"]))
    colour = {"activated": "green", "validated": "cyan", "refused": "red"}.get(pushed.outcome, "white")
    out.print(
        f"pack {pushed.pack_ref}: version {pushed.version_id} (sha256 {pushed.sha256[:12]}) "
        f"[{colour}]{pushed.outcome}[/{colour}]: {pushed.reason}",
        markup=True,
        highlight=False,
    )


def _exit(result: dict[str, Any]) -> None:
    planned = PlanResult.model_validate(result["plan"])
    errors = bool(planned.errors) or any(a.change == "error" for a in planned.actions)
    raise typer.Exit(EXIT_FOUND_ERRORS if errors else EXIT_OK)


def pack_push(
    directory: Annotated[Path, typer.Argument(help="The pack's directory (pack.yaml at its root)")],
    ref: Annotated[str | None, typer.Option(help="The pack's ref (default: pack.yaml's ref, else the folder)")] = None,
    no_activate: Annotated[bool, typer.Option("--no-activate", help="Validate and store only")] = False,
    allow_errors: Annotated[bool, typer.Option("--allow-errors", help="Activate even if the plan has errors")] = False,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Push a pack directory as a new version: validated on the server, then activated
    unless its plan has errors. Exit 1 if the plan has errors."""
    root = directory.resolve()
    if not (root / "pack.yaml").is_file():
        err.print(f"[red]error:[/red] {escape(str(directory))} has no pack.yaml: not a pack directory")
        raise typer.Exit(EXIT_USAGE)
    pack_ref = ref or manifest_ref(root) or root.name
    params: dict[str, Any] = {"wait": 2 if timeout is None else min(2, timeout)}
    if no_activate:
        params["activate"] = "false"
    if allow_errors:
        params["allow_errors"] = "true"
    with tempfile.TemporaryDirectory(prefix="attune-push-") as tmp:
        archive = Path(tmp) / f"{pack_ref}.tar.gz"
        try:
            count = build_archive(root, archive)
        except Unpushable as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}; nothing pushed", markup=True, highlight=False)
            raise typer.Exit(EXIT_USAGE) from None
        if not as_json:
            err.print(f"pushing {pack_ref}: {plural(count, 'file')}, {archive.stat().st_size} bytes")
        show = progress and not as_json and err.is_terminal
        bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                       console=err, transient=True) if show else None  # fmt: skip
        with _client(server) as client:
            client.http.timeout = None  # type: ignore[assignment]  # a large upload takes what it takes
            if bar is not None:
                with bar:
                    started = client.push(pack_ref, _chunks(archive, bar), params)
            else:
                started = client.push(pack_ref, _chunks(archive, None), params)
            result, failed = _settle(client, started, timeout)
    if failed is not None:
        _failed(failed, as_json)
    _print_outcome(result, as_json, started.get("message", ""))
    _exit(result)


def pack_versions(ref: str, server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """The pack's pushed versions, newest first."""
    with _client(server) as client:
        body = client.get(f"/api/v1/packs/{ref}/versions", limit=1000)
    if as_json:
        _print_json(body)
        return
    rows = [
        [v["id"], "*" if v["active"] else "", v["manifest_version"], v["state"], v["file_count"], v["size"],
         v["sha256"][:12], v["uploaded_by"], v["created_at"]]
        for v in body["data"]
    ]  # fmt: skip
    _table(["id", "active", "version", "state", "files", "bytes", "sha256", "by", "pushed at"], rows, title=ref)


def pack_rollback(
    ref: str,
    version: Annotated[int, typer.Argument(help="The version's id (attune pack versions REF)")],
    allow_errors: Annotated[bool, typer.Option("--allow-errors", help="Activate even if the plan has errors")] = False,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Make a stored version the active one again (back or forward). Exit 1 if its plan has errors."""
    params: dict[str, Any] = {"wait": 2 if timeout is None else min(2, timeout)}
    if allow_errors:
        params["allow_errors"] = "true"
    with _client(server) as client:
        r = client.request("POST", f"/api/v1/packs/{ref}/versions/{version}/activate", ok=(200, 202), params=params)
        started = {"status_code": r.status_code, **r.json()}
        result, failed = _settle(client, started, timeout)
    if failed is not None:
        _failed(failed, as_json)
    _print_outcome(result, as_json, started.get("message", ""))
    _exit(result)
