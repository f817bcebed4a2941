"""Pack archives (.tar.gz or .zip) read without trusting them.

``inspect`` reads an archive through (the API, before anything is stored); ``extract``
does the same and writes its files into a fresh private directory (the worker). Both
refuse, with ``HostileArchive`` (422) naming the entry: absolute paths, ``..``
components, links (symbolic and hard), devices, FIFOs and other non-regular entries,
duplicate entries (also a file where a directory is, and the reverse), names that are
not UTF-8 or carry control characters, more than ``max_entries`` entries, more than
``max_unpacked_bytes`` unpacked (counted as the bytes come out, not as headers claim),
a compression ratio past ``max_ratio`` once a few MiB came out (a bomb), a ``pack.yaml``
whose ref is another pack's, no ``pack.yaml`` at all, and what is not an archive.

Only regular files and directories are ever created, each with ``O_EXCL|O_NOFOLLOW`` in
a directory this module made: nothing can land outside it. Permissions and times of the
archive are not kept (files 0644, directories 0755, modification time: the extraction's).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from attune.bundles import tarstream
from attune.errors import AttuneError

MANIFEST = "pack.yaml"
MANIFEST_MAX_BYTES = 64 * 1024
RATIO_GRACE_BYTES = 8 * 1024 * 1024  # small archives may compress well: the ratio counts past this
COPY_BYTES = 1024 * 1024
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 1024
# folders within folders: a pack needs a handful (a prefix, actions/workflows/, a sub-folder or
# two); an archive of 20,000 empty files 480 folders deep took 19 s of the API and 84 s of a
# worker (each file's path checked, and its folders opened, anew)
DEPTH_MAX = 32
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode's category Cc, all of it


class HostileArchive(AttuneError):
    """The archive is refused: the message names the entry and why."""

    status_code = 422


@dataclass(frozen=True, slots=True)
class Limits:
    max_entries: int = 100_000
    max_unpacked_bytes: int = 512 * 1024 * 1024
    max_ratio: float = 200.0


@dataclass(slots=True)
class Inspected:
    """What an archive holds: its format, its files (path in the pack, size), the manifest."""

    format: str
    files: list[tuple[str, int]] = field(default_factory=list)
    unpacked_bytes: int = 0
    prefix: str = ""  # the one top-level folder the pack sits in ("" when at the root)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def manifest_version(self) -> str | None:
        value = self.manifest.get("version")
        return str(value)[:50] if value is not None and not isinstance(value, dict | list) else None


def refuse(entry: str, why: str) -> HostileArchive:
    shown = entry.encode("unicode_escape").decode("ascii")[:300]  # control characters shown, never sent raw
    return HostileArchive(f"Archive entry '{shown}' refused: {why}", entry=shown)


def clean_name(raw: str) -> str:
    """The entry's path in the archive, normalised ("./a//b/" -> "a/b"), or HostileArchive."""
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise refuse(raw, "its name is not UTF-8") from None
    if _CONTROL.search(raw):
        raise refuse(raw, "its name contains control characters")
    if "\\" in raw:
        raise refuse(raw, "its name contains a backslash")
    if raw.startswith("/") or _DRIVE.match(raw):
        raise refuse(raw, "absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise refuse(raw, "'..' in its path")
    if size > PATH_MAX_BYTES or (size > NAME_MAX_BYTES and any(len(p.encode()) > NAME_MAX_BYTES for p in parts)):
        raise refuse(raw, "name too long")
    return "/".join(parts)


class _Budget:
    """The unpacked bytes and entries, counted as they come out, against the limits."""

    def __init__(self, limits: Limits, compressed: Callable[[], int]) -> None:
        self.limits = limits
        self.compressed = compressed
        self.out = 0
        self.entries = 0

    def entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise refuse(name, f"more than {self.limits.max_entries} entries in the archive")

    def add(self, name: str, n: int) -> None:
        self.out += n
        if self.out > self.limits.max_unpacked_bytes:
            raise refuse(name, f"the archive unpacks to more than {self.limits.max_unpacked_bytes} bytes")
        if self.out > RATIO_GRACE_BYTES and self.out > self.limits.max_ratio * max(self.compressed(), 1):
            raise refuse(name, f"compression ratio above {self.limits.max_ratio:g} (a decompression bomb)")


# an entry as both formats yield it: (name, kind, size, reader of its bytes or None)
Member = tuple[str, str, Callable[[], IO[bytes]] | None]


def _tar_members(fh: IO[bytes], budget: _Budget) -> Iterator[Member]:
    stream = tarstream.Stream(fh, budget.add)
    budget.compressed = lambda: stream.compressed
    for name, kind, reader in tarstream.entries(stream):
        if kind == "link":
            raise refuse(name, "links are not allowed")
        if kind == "special":
            raise refuse(name, "not a regular file or directory (device, FIFO or special entry)")
        yield name, kind, None if reader is None else (lambda reader=reader: reader)  # type: ignore[misc]


def _zip_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437")  # zipfile's reading of a name not flagged UTF-8
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape")


def _zip_members(fh: IO[bytes], limits: Limits) -> Iterator[Member]:
    zf = zipfile.ZipFile(fh)
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise refuse(_zip_name(infos[limits.max_entries]), f"more than {limits.max_entries} entries in the archive")
    for info in infos:
        name = _zip_name(info)
        if not name:
            raise refuse(name, "empty name")
        mode = info.external_attr >> 16
        if info.flag_bits & 0x1:
            raise refuse(name, "encrypted entries are not allowed")
        if stat.S_ISLNK(mode):
            raise refuse(name, "links are not allowed")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # no type bits: a file
            raise refuse(name, "not a regular file or directory (device, FIFO or special entry)")
        if info.is_dir():
            yield name, "dir", None
            continue
        if info.file_size > limits.max_unpacked_bytes:
            raise refuse(name, f"the archive unpacks to more than {limits.max_unpacked_bytes} bytes")
        if info.file_size > RATIO_GRACE_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise refuse(name, f"compression ratio above {limits.max_ratio:g} (a decompression bomb)")
        yield name, "file", (lambda info=info: zf.open(info))  # type: ignore[misc]


class _Tree:
    """The paths seen so far: a duplicate, or a file where a directory is, is refused."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()  # every directory, named or implied by a path under it
        self.named: set[str] = set()  # directories that have an entry of their own

    def add(self, raw: str, path: str, kind: str) -> None:
        if not path:
            if kind == "dir":
                return  # "./": the archive's root
            raise refuse(raw, "empty name")
        parts = path.split("/")
        if len(parts) - (kind != "dir") > DEPTH_MAX:  # the folders it sits in (and is)
            raise refuse(raw, f"nested deeper than {DEPTH_MAX} folders")
        for i in range(len(parts) - 1, 0, -1):  # the nearest folder first
            parent = "/".join(parts[:i])
            if parent in self.dirs:
                break  # known, and so are the folders above it (each checked when it was added)
            if parent in self.files:
                raise refuse(raw, f"'{parent}' is a file in the archive, not a directory")
            self.dirs.add(parent)
        if path in self.files or (kind == "file" and path in self.dirs) or (kind == "dir" and path in self.named):
            raise refuse(raw, "duplicate entry")
        if kind == "dir":
            self.named.add(path)
            self.dirs.add(path)
        else:
            self.files.add(path)


Sink = Callable[[str, IO[bytes], Callable[[int], None]], int]


def _sniff(fh: IO[bytes]) -> str:
    head = fh.read(4)
    fh.seek(0)
    if head[:2] == b"\x1f\x8b":
        return "tar.gz"
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    raise HostileArchive("The body is not a .tar.gz or .zip archive", entry=None)


def _read(path: Path, pack_ref: str, limits: Limits, sink: Sink | None) -> Inspected:
    with path.open("rb") as fh:
        fmt = _sniff(fh)
        found = Inspected(fmt)
        tree = _Tree()
        manifests: dict[str, bytes] = {}
        budget = _Budget(limits, lambda: path.stat().st_size)
        if fmt == "tar.gz":
            members: Iterator[Member] = _tar_members(fh, budget)
        else:
            members = _zip_members(fh, limits)
        try:
            for raw, kind, opener in members:
                budget.entry(raw)
                name = clean_name(raw)
                tree.add(raw, name, kind)
                if kind == "dir" or opener is None:
                    if sink is not None and name:
                        sink(name, None, lambda n: None)  # type: ignore[arg-type]
                    continue
                size = _take(name, opener(), sink, budget, fmt, manifests)
                found.files.append((name, size))
        except tarstream.TarError as exc:
            if exc.entry is not None:
                raise refuse(exc.entry, str(exc)) from None
            raise HostileArchive(f"The body is not a valid {fmt} archive: {exc}", entry=None) from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise HostileArchive(f"The body is not a valid {fmt} archive: {exc}", entry=None) from None
        except (OSError, ValueError, NotImplementedError, RuntimeError, LookupError) as exc:
            raise HostileArchive(f"The {fmt} archive cannot be read: {exc}", entry=None) from None
    found.unpacked_bytes = sum(size for _, size in found.files)
    _locate_manifest(found, tree, manifests, pack_ref)
    return found


def _take(name: str, reader: IO[bytes], sink: Sink | None, budget: _Budget, fmt: str,
          manifests: dict[str, bytes]) -> int:  # fmt: skip
    """Reads one file through (into the sink when there is one); its size."""
    keep = name.count("/") <= 1 and name.rsplit("/", 1)[-1] == MANIFEST
    counts = fmt == "zip"  # a .tar.gz counts its bytes on the decompressed stream already

    def count(n: int) -> None:
        if counts:
            budget.add(name, n)

    if keep:  # a manifest candidate: its head kept, the whole read through as any file
        head = reader.read(MANIFEST_MAX_BYTES + 1)
        manifests[name] = head
        reader = _Chain(head, reader)  # type: ignore[assignment]  # read() is all the sink uses
    if sink is not None:
        return sink(name, reader, count)
    size = 0
    while chunk := reader.read(COPY_BYTES):
        size += len(chunk)
        count(len(chunk))
    return size


class _Chain:
    """Bytes already read, then the rest of the reader."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.rest.read(n)
        if n < 0:
            out, self.head = self.head + self.rest.read(), b""
        else:
            out, self.head = self.head[:n], self.head[n:]
        return out


def _locate_manifest(found: Inspected, tree: _Tree, manifests: dict[str, bytes], pack_ref: str) -> None:
    """The pack sits at the archive's root, or in its one top-level folder; its pack.yaml
    must be there and name this pack (or no pack)."""
    if MANIFEST not in manifests:
        tops = {p.split("/", 1)[0] for p, _ in found.files} | {d.split("/", 1)[0] for d in tree.dirs}
        if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in manifests:
            found.prefix = next(iter(tops))
    where = f"{found.prefix}/{MANIFEST}" if found.prefix else MANIFEST
    if where not in manifests:
        raise HostileArchive(f"The archive has no {MANIFEST} at its root (nor in one top-level folder)", entry=None)
    raw = manifests[where]
    if len(raw) > MANIFEST_MAX_BYTES:
        raise refuse(where, f"larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        data = yaml.safe_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise refuse(where, f"not valid YAML ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(data, dict):
        raise refuse(where, "not a YAML mapping")
    ref = data.get("ref")
    if ref is not None and str(ref) != pack_ref:
        raise refuse(where, f"its ref '{ref}' is another pack's (this is pack '{pack_ref}')")
    found.manifest = {str(k): v for k, v in data.items() if isinstance(v, str | int | float | bool | list | dict)}
    if found.prefix:
        cut = len(found.prefix) + 1
        found.files = [(p[cut:], s) for p, s in found.files]
    found.files.sort()


def inspect(path: Path, *, pack_ref: str, limits: Limits) -> Inspected:
    """Reads the archive through without writing anything; HostileArchive when refused."""
    return _read(path, pack_ref, limits, None)


OPEN_FOLDERS = 64  # folders an extraction keeps open at most


def extract(path: Path, dest: Path, *, pack_ref: str, limits: Limits) -> tuple[Inspected, Path]:
    """Writes the archive's files under ``dest`` (a directory this process just made, empty);
    returns what it held and the pack's root in ``dest``. HostileArchive when refused
    (what was written stays under ``dest``: the caller removes it)."""
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    # the folders made so far, open (a pack's 10,000 files sit in a few folders: opening each
    # file's folders again cost a push about 0.3 s); each opened without following a link,
    # under a folder this extraction made
    folders: dict[tuple[str, ...], int] = {(): root_fd}

    def folder(parts: tuple[str, ...]) -> int:
        fd = folders.get(parts)
        if fd is None:
            parent = folder(parts[:-1])
            with contextlib.suppress(FileExistsError):
                os.mkdir(parts[-1], 0o755, dir_fd=parent)
            fd = folders[parts] = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        return fd

    def sink(name: str, reader: IO[bytes] | None, count: Callable[[int], None]) -> int:
        parts = tuple(name.split("/"))
        if len(folders) > OPEN_FOLDERS:  # an archive of many folders: never more than this open
            path = {parts[:i] for i in range(len(parts))}  # but this entry's own folders stay open
            for key in [k for k in folders if k and k not in path]:
                os.close(folders.pop(key))
        if reader is None:
            folder(parts)
            return 0
        fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder(parts[:-1]))
        size = 0
        try:
            while chunk := reader.read(COPY_BYTES):
                size += len(chunk)
                count(len(chunk))
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return size

    try:
        found = _read(path, pack_ref, limits, sink)
    finally:
        for fd in folders.values():
            os.close(fd)
    return found, dest / found.prefix if found.prefix else dest
