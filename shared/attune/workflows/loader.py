"""Pack directory -> files (workflows and actions), safely.

Never follows a symlink, never reads outside the pack directory, never reads
more than ``max_file_size`` bytes of a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from attune.refs import PACK_REF
from attune.workflows.diagnostics import Diagnostic, error, safe_text, warning
from attune.workflows.limits import NAME_MAX, REF_MAX, SOURCE_FILE_MAX

# Used with fullmatch only: "$" would also match before a final newline ("good\n").
WORKFLOW_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,199}")
WORKFLOW_EXTENSIONS = (".yaml", ".yml")
WORKFLOW_SUFFIX = ".workflow"
# Attune's two layouts, read in this order: a workflow of actions/workflows/ wins over
# one of the same name in workflows/ (crates/common/src/workflow/loader.rs, load_pack_workflows).
WORKFLOW_FOLDERS = ("workflows", "actions/workflows")
LINKED_FOLDER = "actions/workflows"
DEFAULT_MAX_FILE_SIZE = 1024 * 1024


class PackDirectoryNotFound(Exception):
    """The pack's directory does not exist (or is not a directory we may read)."""


@dataclass(slots=True)
class SourceFile:
    name: str  # file stem: the workflow or action name
    ref: str  # <pack>.<name>
    path: str  # relative to the pack directory, e.g. workflows/deploy.yaml
    data: bytes | None  # None when the file could not be read (see problem)
    content_hash: str
    size: int
    problem: Diagnostic | None = None  # set by the loader (name, size, duplicate ref, unreadable)
    stat: str = ""  # inode:size:mtime_ns when the file was read
    unchanged: bool = False  # skipped: the caller knows this file (see skip)


@dataclass(slots=True)
class PackFiles:
    pack_ref: str
    root: Path
    workflows: list[SourceFile] = field(default_factory=list)
    actions: list[SourceFile] = field(default_factory=list)
    # Files skipped with a reason (symlinks, unreadable), reported as warnings.
    notes: list[Diagnostic] = field(default_factory=list)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resolve_pack_dir(base_dir: Path, pack_ref: str) -> Path:
    """``base_dir/pack_ref`` after checking the ref cannot escape ``base_dir``."""
    if not PACK_REF.fullmatch(pack_ref):
        raise ValueError(f"Invalid pack ref '{pack_ref[:100]}'")
    return Path(base_dir) / pack_ref


def stat_key(st: os.stat_result) -> str:
    """What says a file changed without reading it: inode, size, modification time and
    change time (ns). The change time is the kernel's: an edit in place that keeps the size
    and puts the modification time back (``os.utime``, ``touch -r``, ``rsync --times``) still
    moves it, and that edit was skipped as unchanged until ``?full=true``."""
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def size_of_key(key: str) -> int:
    return int(key.split(":")[1])


def _read_regular(dir_fd: int, name: str, max_size: int) -> tuple[bytes | None, int, str, str | None]:
    """Reads a regular file relative to an open directory without following symlinks.
    Returns (data, size, stat key, problem)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        return None, 0, "", f"cannot be opened: {exc.strerror}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, 0, "", "is not a regular file"
        key = stat_key(st)
        if st.st_size > max_size:
            return None, st.st_size, key, f"is {st.st_size} bytes, larger than the limit of {max_size} bytes"
        chunks = []
        remaining = max_size + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_size:
            return None, len(data), key, f"is larger than the limit of {max_size} bytes"
        return data, len(data), key, None
    finally:
        os.close(fd)


def _open_folder(root_fd: int, sub: str) -> int:
    """Opens ``sub`` (``actions/workflows``: one step at a time) without following a link."""
    fd = root_fd
    try:
        for part in sub.split("/"):
            opened = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            if fd != root_fd:
                os.close(fd)
            fd = opened
    except OSError:
        if fd != root_fd:
            os.close(fd)
        raise
    return fd


def _list_dir(
    root_fd: int, sub: str, extensions: tuple[str, ...], notes: list[Diagnostic]
) -> tuple[int | None, list[str]]:
    try:
        fd = _open_folder(root_fd, sub)
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        notes.append(warning("unreadable", f"Directory '{sub}' skipped: {exc.strerror}", file=sub, line=1, column=1))
        return None, []
    names = []
    with os.scandir(fd) as it:
        for entry in it:
            if not entry.name.endswith(extensions):
                continue
            if entry.is_symlink():
                notes.append(
                    warning(
                        "symlink",
                        f"'{sub}/{entry.name}' is a symbolic link: skipped",
                        file=f"{sub}/{entry.name}",
                        line=1,
                        column=1,
                    )
                )
                continue
            if entry.is_file(follow_symlinks=False):  # not directories, fifos, sockets
                names.append(entry.name)
    names.sort()
    return fd, names


def _stem(filename: str, sub: str = "workflows") -> str:
    """The name a file gives: no extension, and for a workflow file no ``.workflow`` either
    (Attune names ``deploy.workflow.yaml`` ``deploy``)."""
    stem = filename.rsplit(".", 1)[0]
    if sub != "actions" and stem.endswith(WORKFLOW_SUFFIX):
        return stem[: -len(WORKFLOW_SUFFIX)]
    return stem


def workflow_name(path: str) -> str:
    """The workflow name of a workflow file's path in the pack (``actions/workflows/x.workflow.yaml``: x)."""
    return _stem(path.rsplit("/", 1)[-1])


def _utf8(name: str) -> bool:
    """Whether a name read from the directory is text (os.fsdecode keeps bytes that are
    not UTF-8 as lone surrogates, which no database stores)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(filename: str) -> str:
    """A file name as it is stored and shown: the name itself when it is UTF-8 text
    without control characters, else with those escaped; bounded to fit a source_file."""
    if len(filename) <= _SHOWN_MAX and filename.isprintable():
        return filename  # the common case, without a call (every listed file, every chunk)
    return safe_text(filename, _SHOWN_MAX)


_SHOWN_MAX = SOURCE_FILE_MAX - len("actions/workflows/")


SkipFn = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which workflow files a load reads: those whose path in the pack (``workflows/x.yaml``,
    ``actions/workflows/y.workflow.yaml``, as ``list_workflow_files`` gives them) is in ``only``
    (all when None). A file for which ``skip(path, stat key)`` is true is not read: it comes
    back with ``unchanged`` set. ``stat_keys`` (path -> key of a regular file) saves a stat
    already made."""

    only: Collection[str] | None = None
    skip: SkipFn | None = None
    stat_keys: dict[str, str] | None = None


EVERYTHING = Selection()


@dataclass(slots=True)
class _Folder:
    """One folder being read: the pack's ref, the folder's path in the pack and its listing's notes."""

    pack_ref: str
    sub: str
    notes: list[Diagnostic]
    shadowed: dict[str, str] = field(default_factory=dict)  # name -> the file that wins it


def _refusal(folder: _Folder, filename: str, shown: str, claimed_by: str) -> Diagnostic | None:
    """Why a listed file cannot be a workflow or action (its name, its ref), or None."""
    stem = _stem(shown, folder.sub)
    rel = f"{folder.sub}/{shown}"
    ref = f"{folder.pack_ref}.{stem}"
    if not _utf8(filename):
        message = f"File name '{shown}' is not valid UTF-8 (it becomes the ref)"
        return error("invalid-name", message, file=rel, line=1, column=1)
    if not WORKFLOW_NAME.fullmatch(stem):
        message = (
            f"File name '{stem}' must start with a letter, digit or '_' and hold only letters, "
            "digits, '_' and '-' (it becomes the ref)"
        )
        return error("invalid-name", message, file=rel, line=1, column=1)
    if len(ref) > REF_MAX:
        message = (
            f"The ref '{ref}' is {len(ref)} characters long, more than the {REF_MAX} "
            "the database holds: shorten the file name"
        )
        return error("ref-too-long", message, file=rel, line=1, column=1)
    if claimed_by != rel:
        message = f"'{rel}' and '{claimed_by}' define the same ref '{ref}'"
        return error("duplicate-ref", message, file=rel, line=1, column=1)
    return None


def _skipped(fd: int, filename: str, rel: str, selection: Selection) -> tuple[str, int] | None:
    """(stat key, size) when the selection says the file need not be read, else None."""
    skip = selection.skip
    if skip is None:
        return None
    known = selection.stat_keys.get(rel) if selection.stat_keys is not None else None
    if known is not None:
        return (known, size_of_key(known)) if skip(rel, known) else None
    try:
        st = os.stat(filename, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    key = stat_key(st)
    return (key, st.st_size) if skip(rel, key) else None


def _collect(root_fd: int, folder: _Folder, *, max_size: int, selection: Selection = EVERYTHING) -> list[SourceFile]:
    """Reads the folder's files that the selection names."""
    fd, names = _list_dir(root_fd, folder.sub, WORKFLOW_EXTENSIONS, folder.notes)
    if fd is None:
        return []
    files: list[SourceFile] = []
    only = selection.only
    try:
        first: dict[str, str] = {}  # stem -> the file that claims the ref first (sorted order)
        for filename in names:
            shown = shown_name(filename)
            stem = _stem(shown, folder.sub)
            rel = f"{folder.sub}/{shown}"
            if stem in folder.shadowed:
                continue  # the other layout's file of that name wins (see _listing)
            claimed_by = first.setdefault(stem, rel)
            if only is not None and rel not in only:
                continue
            ref = f"{folder.pack_ref}.{stem}"
            diag = _refusal(folder, filename, shown, claimed_by)
            if diag is not None:
                # a refused file is still reported (a staged row): its ref and name must fit
                ref = safe_text(ref, REF_MAX)
                stem = safe_text(stem, NAME_MAX)
            else:
                known = _skipped(fd, filename, rel, selection)
                if known is not None:
                    files.append(SourceFile(stem, ref, rel, None, "", known[1], None, known[0], True))
                    continue
            data, size, key, problem = _read_regular(fd, filename, max_size)
            if problem and "not a regular file" in problem:
                continue  # directories named *.yaml, sockets, fifos: not workflow files
            if problem and diag is None:
                code = "file-too-large" if "larger than" in problem else "unreadable"
                diag = error(code, f"File {problem}", file=rel, line=1, column=1)
            files.append(
                SourceFile(
                    name=stem,
                    ref=ref,
                    path=rel,
                    data=data if diag is None else None,
                    content_hash=content_hash(data) if data is not None else "",
                    size=size,
                    problem=diag,
                    stat=key,
                )
            )
    finally:
        os.close(fd)
    return files


def _names_in(root_fd: int, sub: str) -> set[str]:
    """The workflow names a folder's files give (nothing noted: the folder's own read notes)."""
    fd, names = _list_dir(root_fd, sub, WORKFLOW_EXTENSIONS, [])
    if fd is not None:
        os.close(fd)
    return {_stem(shown_name(n)) for n in names}


def _workflow_folders(root_fd: int, pack_ref: str, notes: list[Diagnostic]) -> list[_Folder]:
    """Both workflow folders, ``workflows/`` told which of its names ``actions/workflows/`` wins
    (each such file is noted, never read)."""
    linked = _names_in(root_fd, LINKED_FOLDER)
    plain = _Folder(pack_ref, "workflows", notes)
    if linked:
        fd, names = _list_dir(root_fd, "workflows", WORKFLOW_EXTENSIONS, [])
        if fd is not None:
            os.close(fd)
        for n in names:
            shown = shown_name(n)
            stem = _stem(shown)
            if stem in linked:
                plain.shadowed[stem] = f"workflows/{shown}"
                notes.append(
                    warning(
                        "shadowed-workflow",
                        f"'workflows/{shown}' is not read: '{LINKED_FOLDER}/' defines the workflow "
                        f"'{pack_ref}.{stem}' too, and that copy wins (as in Attune)",
                        file=f"workflows/{shown}",
                        line=1,
                        column=1,
                    )
                )
    return [plain, _Folder(pack_ref, LINKED_FOLDER, notes)]


def list_workflow_files(pack_dir: Path) -> list[str] | None:
    """The paths in the pack of its workflow files (None when the pack directory does not
    exist): ``workflows/`` then ``actions/workflows/``, each sorted, without the files the
    other layout wins. Names are as stored and shown (``shown_name``); ``Selection.only``
    takes them in that form."""
    try:
        root_fd = os.open(pack_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        out: list[str] = []
        for folder in _workflow_folders(root_fd, "-", []):
            fd, names = _list_dir(root_fd, folder.sub, WORKFLOW_EXTENSIONS, [])
            if fd is not None:
                os.close(fd)
            for n in names:
                shown = shown_name(n)
                if _stem(shown) not in folder.shadowed:
                    out.append(f"{folder.sub}/{shown}")
        return out
    finally:
        os.close(root_fd)


def _open_pack(pack_dir: Path) -> int:
    try:
        return os.open(pack_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise PackDirectoryNotFound(str(pack_dir)) from exc
    except OSError as exc:  # a symlink (ELOOP) or no permission
        raise PackDirectoryNotFound(f"{pack_dir}: {exc.strerror}") from exc


def load_actions(pack_dir: Path, pack_ref: str, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> PackFiles:
    """Lists and reads ``actions/*.yaml|yml`` of a pack directory (no workflow file)."""
    root_fd = _open_pack(pack_dir)
    try:
        pack = PackFiles(pack_ref=pack_ref, root=Path(pack_dir))
        pack.actions = _collect(root_fd, _Folder(pack_ref, "actions", pack.notes), max_size=max_file_size)
        return pack
    finally:
        os.close(root_fd)


def load_workflows(
    pack_dir: Path,
    pack_ref: str,
    *,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    selection: Selection | None = None,
) -> PackFiles:
    """Lists and reads the workflow files of a pack directory, both layouts (those
    ``selection`` names)."""
    root_fd = _open_pack(pack_dir)
    try:
        pack = PackFiles(pack_ref=pack_ref, root=Path(pack_dir))
        for folder in _workflow_folders(root_fd, pack_ref, pack.notes):
            pack.workflows += _collect(root_fd, folder, max_size=max_file_size, selection=selection or EVERYTHING)
        return pack
    finally:
        os.close(root_fd)


def load_pack_dir(pack_dir: Path, pack_ref: str, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> PackFiles:
    """Lists and reads every workflow file (both layouts) and action file of a pack directory."""
    root_fd = _open_pack(pack_dir)
    try:
        pack = PackFiles(pack_ref=pack_ref, root=Path(pack_dir))
        for folder in _workflow_folders(root_fd, pack_ref, pack.notes):
            pack.workflows += _collect(root_fd, folder, max_size=max_file_size)
        pack.actions = _collect(root_fd, _Folder(pack_ref, "actions", pack.notes), max_size=max_file_size)
        return pack
    finally:
        os.close(root_fd)


def load_pack(base_dir: Path, pack_ref: str, *, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> PackFiles:
    return load_pack_dir(resolve_pack_dir(base_dir, pack_ref), pack_ref, max_file_size=max_file_size)
