"""The .tar.gz reader of pushed packs (attune.bundles.tarstream) reads what tarfile reads:
the same entries, names, kinds and bytes, for archives written by tarfile in its three
formats (ustar, GNU, pax) with long and non-ASCII names, big files, directories, gzip
members concatenated, a global pax header (what ``git archive`` writes); and it refuses,
where tarfile would stop without a word, a header it cannot trust."""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import tarfile
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attune.bundles import tarstream
from attune.bundles.archive import _CONTROL


def read_ours(data: bytes) -> list[tuple[str, str, bytes | None]]:
    stream = tarstream.Stream(io.BytesIO(data), lambda name, n: None)
    return [(name, kind, None if r is None else r.read()) for name, kind, r in tarstream.entries(stream)]


def read_tarfile(data: bytes) -> list[tuple[str, str, bytes | None]]:
    out = []
    inflated = gzip.GzipFile(fileobj=io.BytesIO(data))  # what the reader replaced: gzip members, then tarfile
    with tarfile.open(fileobj=inflated, mode="r|", encoding="utf-8", errors="surrogateescape") as tf:
        for ti in tf:
            if ti.isdir():
                out.append((ti.name, "dir", None))
            elif ti.issym() or ti.islnk():
                out.append((ti.name, "link", None))
                break
            elif ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and not ti.issparse():
                fh = tf.extractfile(ti)
                assert fh is not None
                out.append((ti.name, "file", fh.read()))
            else:
                out.append((ti.name, "special", None))
                break
    return out


def build(entries: list[tuple[str, bytes | None]], fmt: int, *, level: int = 6, pax: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=fmt, compresslevel=level, pax_headers=pax or {},
                      encoding="utf-8", errors="surrogateescape") as tf:  # fmt: skip
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SEGMENT = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=40)
NAMES = st.lists(SEGMENT, min_size=1, max_size=6).map("/".join)
DATA = st.one_of(st.none(), st.binary(max_size=3000), st.sampled_from([b"", b"\0" * 512, b"x" * 70_000]))
FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.tuples(NAMES, DATA), max_size=8), fmt=FORMATS, level=st.sampled_from([0, 1, 9]))
def test_reads_what_tarfile_reads(entries, fmt, level):
    try:
        data = build(entries, fmt, level=level)
    except ValueError:  # ustar cannot hold the name (too long, or not splittable): nothing to compare
        return
    assert read_ours(data) == read_tarfile(data)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_and_unicode_names_and_big_files(fmt):
    entries = [
        ("pack.yaml", b"ref: p\n"),
        ("workflows", None),
        ("workflows/" + "d" * 90 + "/" + "n" * 60 + ".yaml", b"a" * 5000),
        ("workflows/été/ünï.yaml", b"b"),
        ("big.bin", bytes(range(256)) * 9000),
    ]
    if fmt != tarfile.USTAR_FORMAT:
        entries.append(("x" * 300 + ".yaml", b"long"))
    data = build(entries, fmt)
    ours = read_ours(data)
    assert ours == read_tarfile(data)
    assert [name for name, _, _ in ours] == [name for name, _ in entries]


def test_global_pax_header_and_concatenated_gzip_members():
    """``git archive`` starts with a global pax header (the commit); a .tar.gz may be
    gzip members one after the other (``cat a.gz b.gz``), with zero padding between."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "abc123"}) as tf:
        for name in ("pack.yaml", "workflows/a.yaml", "workflows/b.yaml"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    tar = raw.getvalue()
    joined = gzip.compress(tar[:1000]) + b"\0" * 7 + gzip.compress(tar[1000:])
    assert read_ours(joined) == read_tarfile(joined)
    assert [n for n, _, _ in read_ours(joined)] == ["pack.yaml", "workflows/a.yaml", "workflows/b.yaml"]


def test_a_global_path_names_every_entry():
    data = build([("a", b"1"), ("b", b"2")], tarfile.PAX_FORMAT, pax={"path": "same"})
    assert read_ours(data) == read_tarfile(data) == [("same", "file", b"1"), ("same", "file", b"2")]


def corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    tar = bytearray(gzip.decompress(data))
    tar[offset : offset + len(value)] = value
    return gzip.compress(bytes(tar))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: corrupt(d, 3 * 512 + 10, b"Z"), "bad checksum"),  # the second header: its name, not its checksum
        (lambda d: gzip.compress(gzip.decompress(d)[:1100]), "unexpected end of data"),
        (lambda d: d[: len(d) // 2], "cut short"),
        (lambda d: d[:20] + b"\xff" * 40 + d[60:], "not gzip data"),
    ],
)
def test_a_header_it_cannot_trust_is_refused(change, why):
    data = build([("pack.yaml", b"x" * 600), ("workflows/a.yaml", b"y" * 3000)], tarfile.USTAR_FORMAT, level=0)
    with pytest.raises(tarstream.TarError, match=why):
        read_ours(change(data))


def directory_with_data() -> bytes:
    """A .tar.gz whose directory entry "d" says it carries 512 bytes (and does)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.size = 512
        tf.addfile(info, io.BytesIO(b"\1" * 512))
    return gzip.compress(raw.getvalue())


def test_a_directory_with_data_and_a_sparse_file_are_not_read_as_plain_entries():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("sparse")
        info.size = 1
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        tf.addfile(info, io.BytesIO(b"s"))
    assert read_ours(gzip.compress(raw.getvalue())) == [("sparse", "special", None)]
    with pytest.raises(tarstream.TarError, match="carries data"):
        read_ours(directory_with_data())


def test_the_budget_hears_of_every_decompressed_byte_as_it_comes_out():
    data = build([("zeros.bin", b"\0" * (5 * 1024 * 1024))], tarfile.PAX_FORMAT)
    heard: list[tuple[str, int]] = []
    stream = tarstream.Stream(io.BytesIO(data), lambda name, n: heard.append((name, n)))
    for _, _, reader in tarstream.entries(stream):
        assert reader is not None
        while reader.read(65536):
            pass
    assert max(n for _, n in heard) <= tarstream.PIECE
    assert 5 * 1024 * 1024 < sum(n for _, n in heard) <= len(gzip.decompress(data))
    assert {name for name, _ in heard} >= {"zeros.bin"}


def test_control_characters_are_unicodes_category_cc():
    cc = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cc"}
    assert {c for c in range(sys.maxunicode + 1) if _CONTROL.search(chr(c))} == cc
    assert isinstance(_CONTROL, re.Pattern)


# -- what an attack from outside found (a helper's run against the first version) -----------


def _archive(tmp_path, files: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(build([("pack.yaml", b"ref: p\n"), *files.items()], fmt, level=1))
    return path


def test_a_large_manifest_candidate_streams_through_without_being_held_whole(tmp_path):
    """Any pack.yaml one folder deep is a manifest candidate: its head is kept, the rest is
    written as any file's (it was read whole, then copied once per mebibyte: quadratic)."""
    import tracemalloc

    from attune.bundles.archive import Limits, extract

    body = b"".join(bytes([i % 251]) * 1000 + os.urandom(24) for i in range(24 * 1024))  # 24 MiB, ratio < 200
    path = _archive(tmp_path, {"junk/pack.yaml": body})
    dest = tmp_path / "out"
    dest.mkdir()
    tracemalloc.start()
    try:
        extract(path, dest, pack_ref="p", limits=Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (dest / "junk" / "pack.yaml").read_bytes() == body
    assert peak < 8 * 1024 * 1024, peak  # a few pieces of a mebibyte, not the file (24 MiB) nor copies of it


def test_pax_records_that_change_nothing_are_not_kept():
    """Times, owners, comments: checked for form, dropped (many of them in a global header
    cost every later entry a copy and a scan)."""

    def rec(key: str, value: str) -> bytes:
        body = f" {key}={value}\n".encode()
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        return str(n).encode() + body

    assert tarstream._pax(rec("mtime", "1.5") + rec("uname", "me") + rec("comment", "x" * 300)) == {}
    kept = tarstream._pax(rec("path", "a/b") + rec("size", "5") + rec("GNU.sparse.major", "1") + rec("atime", "1"))
    assert kept == {"path": "a/b", "size": "5", "GNU.sparse": ""}


def test_refusals_name_the_entry_being_read(tmp_path):
    """The budget hears of bytes as they are taken, not as they are decompressed ahead: the
    entry named is the one that carried them; a directory with data is named too."""
    from attune.bundles.archive import HostileArchive, Limits, inspect

    path = _archive(tmp_path, {"big": os.urandom(200_000)})
    with pytest.raises(HostileArchive) as caught:
        inspect(path, pack_ref="p", limits=Limits(max_unpacked_bytes=100_000))
    assert caught.value.message.startswith("Archive entry 'big' refused")
    path.write_bytes(directory_with_data())
    with pytest.raises(HostileArchive) as caught:
        inspect(path, pack_ref="p", limits=Limits())
    assert caught.value.message == "Archive entry 'd' refused: a directory entry that carries data"
