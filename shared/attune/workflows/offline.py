"""``attune validate PATH``: what a CI pipeline runs before deploying a pack."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

import yaml

from attune.workflows.checker import PackReport, check_pack
from attune.workflows.diagnostics import safe_text
from attune.workflows.loader import PACK_REF, PackDirectoryNotFound, load_pack_dir

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


def pack_ref_of(pack_dir: Path) -> str:
    """``pack.yaml``'s ref when it has a usable one, else the directory name."""
    manifest = pack_dir / "pack.yaml"
    if manifest.is_file() and not manifest.is_symlink():
        try:
            data = yaml.safe_load(manifest.read_bytes()[: 1024 * 1024])
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError, OSError, ValueError):
            data = None  # the directory name then; the workflows say what is wrong with them
        if isinstance(data, dict) and isinstance(data.get("ref"), str):
            return data["ref"]
    return pack_dir.resolve().name


def report_json(report: PackReport, show_warnings: bool = True) -> dict:
    """What ``POST /api/v1/packs/{ref}/workflows/validate`` answers (and ``attune pack validate
    --json`` prints) for the same files: ``{"data": <validate result>, "message": ...}``."""
    from attune.sync.schemas import VALIDATED_MESSAGE, validate_result

    data = validate_result(report).model_dump(mode="json")
    if not show_warnings:  # --no-warnings: errors only (warning_count still counts them)
        data["notes"] = [d for d in data["notes"] if d["severity"] == "error"]
        kept = {ref: [d for d in diags if d["severity"] == "error"] for ref, diags in data["diagnostics"].items()}
        data["diagnostics"] = {ref: diags for ref, diags in kept.items() if diags}
    return {"data": data, "message": VALIDATED_MESSAGE}


def report_text(report: PackReport, out: TextIO, show_warnings: bool = True, prefix: str = "") -> None:
    """One ``file:line:column: severity code message`` line per diagnostic, then a summary.
    ``prefix`` (the pack directory as given) makes file names clickable from the caller's directory."""
    lines = []
    every = [*report.notes, *(d for a in report.actions for d in a.diagnostics)]
    every += [d for w in report.workflows for d in w.diagnostics]
    for d in every:
        if show_warnings or d.is_error:
            lines.append(prefix + d.format_text())
    for line in lines:
        out.write(line + "\n")
    errors = sum(len(w.errors) for w in report.workflows)
    warns = sum(len(w.warnings) for w in report.workflows)
    out.write(
        f"{report.pack_ref}: {len(report.workflows)} workflows checked, {report.error_count} with errors "
        f"({errors} errors, {warns} warnings)\n"
    )


def validate_path(
    path: Path,
    *,
    output_format: str = "text",
    pack_ref: str | None = None,
    known_actions: Iterable[str] = (),
    max_file_size: int = 1024 * 1024,
    show_warnings: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if not path.is_dir():
        err.write(f"error: {safe_text(str(path))} is not a directory\n")
        return EXIT_USAGE
    ref = pack_ref or pack_ref_of(path)
    if not PACK_REF.fullmatch(ref):
        err.write(
            f"error: pack ref '{safe_text(ref, 120)}' is invalid: a lowercase letter first, then lowercase "
            "letters, digits, '_' or '-' (use --pack-ref)\n"
        )
        return EXIT_USAGE
    try:
        files = load_pack_dir(path, ref, max_file_size=max_file_size)
    except PackDirectoryNotFound as exc:
        err.write(f"error: cannot read pack directory {safe_text(str(exc))}\n")
        return EXIT_USAGE
    report = check_pack(files, known_actions=set(known_actions))
    if output_format == "json":
        json.dump(report_json(report, show_warnings), out, indent=2)
        out.write("\n")
    else:
        prefix = "" if str(path) in ("", ".") else safe_text(str(path)).rstrip("/") + "/"
        report_text(report, out, show_warnings, prefix)
    return EXIT_ERRORS if report.error_count else EXIT_OK
