"""A .tar.gz read as a stream of entries, without ``tarfile``: its per-entry Python work
(a TarInfo, its fields decoded one by one through layers of file objects) was about half of
reading a pushed pack of 10,000 files, on the API (inspection) and again on the worker
(extraction).

The headers are read as ``tarfile`` reads them (ustar, GNU and pax; names decoded UTF-8 with
surrogateescape, which ``archive.clean_name`` then refuses), with three differences, all
stricter: a header whose checksum is wrong, or that the stream cuts, refuses the archive
anywhere in it (``tarfile`` ends the archive there without a word); a directory entry that
carries data is refused; a number that is not octal is refused where ``tarfile`` would be
lenient about spaces only. Every kind of entry but a regular file or a directory is
yielded with its kind for the caller to refuse (links, devices, FIFOs, sparse and the rest).

Decompressed bytes are counted against the budget as they come out (headers included), a
mebibyte at most at a time, so a bomb stops before it fills memory. Concatenated gzip
members are read as one stream (as ``gzip`` does).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import IO

BLOCK = 512
PIECE = 1024 * 1024  # decompressed at most at a time
INPUT = 256 * 1024  # compressed bytes read at a time
PAX_MAX = 1024 * 1024  # a pax header or GNU long name larger than this is refused

REGULAR = (b"0", b"\0")
DIRECTORY = b"5"
LINKS = (b"1", b"2")
PAX = (b"x", b"X")
PAX_GLOBAL = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"
GNU_LONG = (GNU_LONGNAME, GNU_LONGLINK)
GNU_TYPES = (*GNU_LONG, b"S")
EXTENDED = (*PAX, PAX_GLOBAL, *GNU_LONG)
ZERO = bytes(BLOCK)


class TarError(Exception):
    """Not a valid .tar.gz (the caller turns it into a refusal, naming ``entry`` if known)."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry


class Stream:
    """The decompressed bytes of a .tar.gz, taken in order; ``counted(name, n)`` is told of
    every piece taken (``name``: the entry being read), before the next piece comes out."""

    def __init__(self, raw: IO[bytes], counted: Callable[[str, int], None]) -> None:
        self.raw = raw
        self.counted = counted
        self.current = "(archive headers)"
        self.compressed = 0
        self._z = zlib.decompressobj(31)
        self._pending = b""
        self._buf = b""
        self._pos = 0

    def _more(self) -> bool:
        """Decompresses the next piece into the buffer; False at the end of the input."""
        while True:
            if not self._pending:
                self._pending = self.raw.read(INPUT)
                self.compressed += len(self._pending)
                if not self._pending:
                    if not self._z.eof:
                        raise TarError("the gzip stream is cut short")
                    return False
            if self._z.eof:  # another gzip member follows (after zero padding, as gzip allows)
                self._pending = self._pending.lstrip(b"\0")
                if not self._pending:
                    continue
                self._z = zlib.decompressobj(31)
            try:
                out = self._z.decompress(self._pending, PIECE)
            except zlib.error as exc:
                raise TarError(f"not gzip data ({exc})") from None
            self._pending = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
            if out:
                self._buf, self._pos = out, 0  # the previous piece was taken whole
                return True

    def take(self, n: int) -> bytes:
        """Exactly ``n`` bytes (fewer only at the end of the stream)."""
        end = self._pos + n
        if end <= len(self._buf):
            out = self._buf[self._pos : end]
            self._pos = end
            self.counted(self.current, n)
            return out
        parts = [self._buf[self._pos :]]  # pieces joined once: never the buffer copied again per piece
        have = len(parts[0])
        self.counted(self.current, have)
        self._buf, self._pos = b"", 0
        while have < n and self._more():
            piece = self._buf[: n - have]
            self._pos = len(piece)
            self.counted(self.current, len(piece))
            parts.append(piece)
            have += len(piece)
        return b"".join(parts)

    def skip(self, n: int) -> None:
        while n > 0:
            chunk = self.take(min(n, PIECE))
            if not chunk:
                raise TarError("unexpected end of data")
            n -= len(chunk)


class Member:
    """One entry's bytes, read from the stream in order (``read`` as a file's)."""

    __slots__ = ("left", "stream")

    def __init__(self, stream: Stream, size: int) -> None:
        self.stream = stream
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        data = self.stream.take(n)
        if len(data) < n:
            raise TarError("unexpected end of data")
        self.left -= n
        return data


def _nts(field: bytes) -> str:
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def _nti(field: bytes) -> int:
    if field[0] in (0o200, 0o377):  # base-256 (GNU): large or negative numbers
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if field[0] == 0o377 else n
    end = field.find(b"\0")
    text = (field if end < 0 else field[:end]).strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise TarError("a header field is not a number") from None


def _checksum_ok(block: bytes) -> bool:
    stored = _nti(block[148:156])
    unsigned = 256 + sum(block) - sum(block[148:156])
    if stored == unsigned:
        return True
    signed = 256 + sum(b - 256 if b > 127 else b for i, b in enumerate(block) if not 148 <= i < 156)
    return stored == signed


def _pax(data: bytes) -> dict[str, str]:
    """The records of a pax header ("<length> <key>=<value>\\n" each) that change how an
    entry is read: its path, its size, and whether it is sparse (``GNU.sparse``); the rest
    (times, owners, comments) is checked for form and dropped, so that many records cost
    neither memory nor time for each later entry."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos : pos + 1] != b"\0":
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarError("a pax header is malformed") from None
        if space < 0 or length <= 0 or pos + length > len(data) or data[pos + length - 1 : pos + length] != b"\n":
            raise TarError("a pax header is malformed")
        key, eq, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not eq:
            raise TarError("a pax header is malformed")
        if key in (b"path", b"size"):
            out[key.decode()] = value.decode("utf-8", "surrogateescape")
        elif key.startswith(b"GNU.sparse"):
            out["GNU.sparse"] = ""
        pos += length
    return out


def _data(stream: Stream, size: int, what: str) -> bytes:
    if not 0 <= size <= PAX_MAX:
        raise TarError(f"a {what} larger than {PAX_MAX} bytes")
    data = stream.take(size)
    if len(data) < size:
        raise TarError("unexpected end of data")
    stream.skip(-size % BLOCK)
    return data


def _header(stream: Stream) -> bytes | None:
    """The next header block; None at the end of the archive (a zero block, or no more data)."""
    block = stream.take(BLOCK)
    if not block or block == ZERO:
        return None  # what follows the end-of-archive block is not read
    if len(block) < BLOCK:
        raise TarError("unexpected end of data")
    if not _checksum_ok(block):
        raise TarError("bad checksum")
    return block


def entries(stream: Stream) -> Iterator[tuple[str, str, Member | None]]:
    """(name, kind, reader) for each entry, kind "file" (what its reader leaves unread is
    skipped when the next entry is asked for), "dir", "link" or "special" (the caller
    refuses the last two: nothing after them is read)."""
    glob: dict[str, str] = {}
    while (block := _header(stream)) is not None:
        kind, size = block[156:157], _nti(block[124:136])
        pax: dict[str, str] = {}
        long_name = None
        while kind in EXTENDED:
            data = _data(stream, size, "GNU long name" if kind in GNU_LONG else "pax header")
            if kind == PAX_GLOBAL:
                glob.update(_pax(data))
            elif kind in PAX:
                pax.update(_pax(data))
            elif kind == GNU_LONGNAME:
                long_name = _nts(data)
            block = _header(stream)
            if block is None:
                if kind == PAX_GLOBAL:
                    return  # a global header, then the end (git archive of an empty tree)
                raise TarError("an extended header without its entry")
            kind, size = block[156:157], _nti(block[124:136])
        fields = {**glob, **pax}
        name = _nts(block[0:100])
        prefix = _nts(block[345:500])
        if kind == b"\0" and name.endswith("/"):
            kind = DIRECTORY  # the old V7 way of writing a directory
        if kind == DIRECTORY:
            name = name.rstrip("/")
        if prefix and kind not in GNU_TYPES:
            name = f"{prefix}/{name}"
        if long_name is not None:
            name = long_name.removesuffix("/") if kind == DIRECTORY else long_name
        if "path" in fields:
            name = fields["path"].rstrip("/")
        if "size" in fields:
            try:
                size = int(fields["size"])
            except ValueError:
                raise TarError("a pax size is not a number") from None
        if size < 0:
            raise TarError("a negative size")
        stream.current = name
        if kind in REGULAR and "GNU.sparse" not in fields:
            member = Member(stream, size)
            yield name, "file", member
            stream.skip(member.left + (-size % BLOCK))
        elif kind == DIRECTORY:
            if size:
                raise TarError("a directory entry that carries data", entry=name)
            yield name, "dir", None
        else:
            yield name, "link" if kind in LINKS else "special", None
            return
