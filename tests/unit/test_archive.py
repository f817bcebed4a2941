"""Issue 17, item 5: hostile archives are refused naming the entry, and nothing is ever
written outside the private directory (archives built here, and by hypothesis)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attune.bundles.archive import HostileArchive, Limits, extract, inspect
from tests.archives import pack_files, tar_gz, tar_member, zip_bytes

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")
LIMITS = Limits()


def write(tmp_path: Path, data: bytes, name: str = "a.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(tmp_path: Path, data: bytes, ref: str = "p", limits: Limits = LIMITS) -> str:
    path = write(tmp_path, data)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(HostileArchive) as caught:
        extract(path, dest, pack_ref=ref, limits=limits)
    with pytest.raises(HostileArchive):
        inspect(path, pack_ref=ref, limits=limits)
    assert caught.value.status_code == 422
    return caught.value.message


BASE = pack_files("p")


@pytest.mark.parametrize(
    ("extra", "entry", "why"),
    [
        (tar_member("/etc/evil"), "/etc/evil", "absolute path"),
        (tar_member("workflows/../../evil"), "workflows/../../evil", "'..'"),
        (tar_member("link", tarfile.SYMTYPE, linkname="/etc/passwd"), "link", "links"),
        (tar_member("hard", tarfile.LNKTYPE, linkname="pack.yaml"), "hard", "links"),
        (tar_member("dev", tarfile.CHRTYPE), "dev", "device, FIFO"),
        (tar_member("blk", tarfile.BLKTYPE), "blk", "device, FIFO"),
        (tar_member("fifo", tarfile.FIFOTYPE), "fifo", "device, FIFO"),
        (tar_member("pack.yaml"), "pack.yaml", "duplicate"),
        (tar_member("./workflows//deploy.yaml"), "./workflows//deploy.yaml", "duplicate"),
        (tar_member("pack.yaml/inner"), "pack.yaml/inner", "is a file"),
        (tar_member("bad\x07name"), "bad\\x07name", "control characters"),
        (tar_member("new\nline"), "new\\nline", "control characters"),
        (tar_member("win\\path"), "win\\\\path", "backslash"),
        (tar_member("C:/evil"), "C:/evil", "absolute path"),
    ],
)
def test_hostile_tar_entries_are_refused_naming_them(tmp_path, extra, entry, why):
    message = refused(tmp_path, tar_gz(BASE, extra=extra))
    assert f"'{entry}'" in message and why in message
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_a_name_that_is_not_utf8(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        for name, text in BASE.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text.encode() if isinstance(text, str) else text))
        info = tarfile.TarInfo("caf\xe9.yaml")  # latin-1 bytes: not UTF-8
        tf.addfile(info, io.BytesIO(b""))
    assert "not UTF-8" in refused(tmp_path, gzip.compress(raw.getvalue()))


def test_zip_links_devices_duplicates_and_names(tmp_path):
    def with_entry(info: zipfile.ZipInfo, data: bytes = b"x") -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, text in BASE.items():
                zf.writestr(name, text)
            zf.writestr(info, data)
        return buf.getvalue()

    link = zipfile.ZipInfo("link")
    link.external_attr = (0o120777) << 16
    assert "links" in refused(tmp_path, with_entry(link))
    fifo = zipfile.ZipInfo("fifo")
    fifo.external_attr = 0o010644 << 16
    d2 = tmp_path / "2"
    d2.mkdir()
    assert "device, FIFO" in refused(d2, with_entry(fifo))
    d3 = tmp_path / "3"
    d3.mkdir()
    with pytest.warns(UserWarning):  # zipfile warns of the duplicate name it writes
        assert "duplicate" in refused(d3, with_entry(zipfile.ZipInfo("pack.yaml")))
    d4 = tmp_path / "4"
    d4.mkdir()
    assert "'..'" in refused(d4, with_entry(zipfile.ZipInfo("../up")))
    d5 = tmp_path / "5"
    d5.mkdir()
    data = with_entry(zipfile.ZipInfo("cafX.yaml")).replace(b"cafX.yaml", b"caf\xff.yaml")  # not UTF-8, not flagged
    assert "not UTF-8" in refused(d5, data)


def test_too_many_entries(tmp_path):
    files = {**BASE, **{f"workflows/w{i}.yaml": "x" for i in range(20)}}
    assert "more than 10 entries" in refused(tmp_path, tar_gz(files), limits=Limits(max_entries=10))
    d = tmp_path / "z"
    d.mkdir()
    assert "more than 10 entries" in refused(d, zip_bytes(files), limits=Limits(max_entries=10))


def test_total_unpacked_size_counted_as_it_comes_out(tmp_path):
    files = {**BASE, "big.bin": os.urandom(300_000)}
    assert "unpacks to more than" in refused(tmp_path, tar_gz(files), limits=Limits(max_unpacked_bytes=200_000))


def test_a_compression_bomb_is_stopped_early(tmp_path):
    files = {**BASE, "zeros.bin": b"\0" * (64 * 1024 * 1024)}
    message = refused(tmp_path, tar_gz(files))
    assert "'zeros.bin'" in message and "compression ratio" in message
    d = tmp_path / "z"
    d.mkdir()
    assert "compression ratio" in refused(d, zip_bytes(files))


def test_a_manifest_of_another_pack_or_none(tmp_path):
    assert "another pack's" in refused(tmp_path, tar_gz(pack_files("other")), ref="p")
    d = tmp_path / "none"
    d.mkdir()
    assert "no pack.yaml" in refused(d, tar_gz({"workflows/a.yaml": "x"}))


@pytest.mark.parametrize("body", [b"", b"hello", b"\x1f\x8b\x08garbage", b"PK\x03\x04garbage", b"{}"])
def test_not_an_archive(tmp_path, body):
    assert "archive" in refused(tmp_path, body)


def test_a_pack_in_one_top_level_folder(tmp_path):
    path = write(tmp_path, tar_gz(BASE, prefix="my_pack/"))
    dest = tmp_path / "out"
    dest.mkdir()
    found, root = extract(path, dest, pack_ref="p", limits=LIMITS)
    assert root == dest / "my_pack" and (root / "pack.yaml").is_file()
    assert [p for p, _ in found.files] == sorted(BASE)


def test_an_archive_of_many_folders_extracts_whole_and_leaves_no_descriptor_open(tmp_path):
    """Extraction keeps the folders it made open while it writes into them (not one open per
    file), never more than OPEN_FOLDERS at once: 300 folders, deep and wide, every file in
    place with its bytes, and the process holds no more descriptors than before."""
    from attune.bundles.archive import OPEN_FOLDERS

    files = dict(BASE)
    for i in range(300):
        files[f"data/d{i % 7}/e{i}/f{i}.txt"] = f"file {i}\n" * (i % 5 + 1)
    for depth in range(20):
        files["deep/" + "/".join(f"l{j}" for j in range(depth + 1)) + "/x.txt"] = str(depth)
    assert len({k.rsplit("/", 1)[0] for k in files}) > 2 * OPEN_FOLDERS
    path = write(tmp_path, tar_gz(files, prefix="my_pack/"))
    dest = tmp_path / "out"
    dest.mkdir()
    before = len(os.listdir("/proc/self/fd"))
    found, root = extract(path, dest, pack_ref="p", limits=LIMITS)
    assert len(os.listdir("/proc/self/fd")) == before
    assert sorted(p for p, _ in found.files) == sorted(files)
    for name, value in files.items():
        assert (root / name).read_bytes() == (value.encode() if isinstance(value, str) else value), name


NAMES = st.lists(st.sampled_from(["a", "", ".", "..", "\\", "\x00", "\n", "é", "C:", " ", "pack.yaml", "\udce9"]),
                 max_size=6)  # fmt: skip
KINDS = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(NAMES.map("/".join), KINDS), max_size=6), as_zip=st.booleans())
def test_whatever_the_archive_nothing_lands_outside(tmp_path_factory, entries, as_zip):
    tmp = tmp_path_factory.mktemp("fuzz")
    outside = set(os.listdir(tmp))
    if as_zip:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, text in BASE.items():
                zf.writestr(name, text)
            for name, kind in entries:
                info = zipfile.ZipInfo(name.encode("utf-8", "replace").decode())  # zipfile writes no surrogates
                info.external_attr = {tarfile.SYMTYPE: 0o120777, tarfile.FIFOTYPE: 0o010644}.get(kind, 0o100644) << 16
                zf.writestr(info, b"data")
        data = buf.getvalue()
    else:
        extras = [tar_member(name, kind, linkname="../../etc/passwd") for name, kind in entries]
        data = tar_gz(BASE, extra=lambda tf: [add(tf) for add in extras])
    path = tmp / "archive"
    path.write_bytes(data)
    dest = tmp / "private"
    dest.mkdir()
    try:
        extract(path, dest, pack_ref="p", limits=LIMITS)
    except HostileArchive as exc:
        assert "refused" in exc.message or "archive" in exc.message
    assert set(os.listdir(tmp)) == outside | {"archive", "private"}
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = Path(root) / name
            assert not p.is_symlink() and (p.is_dir() or p.is_file())
            assert p.resolve().is_relative_to(dest.resolve())
            if p.is_file():
                assert p.stat().st_nlink == 1


def test_folders_nested_past_the_limit_are_refused(tmp_path):
    """Found from outside: 20,000 empty files 480 folders deep (533 KB) took 19 s of the
    API and 84 s of a worker. At most DEPTH_MAX folders deep; that deep still extracts."""
    from attune.bundles.archive import DEPTH_MAX

    deepest = "/".join(f"d{i}" for i in range(DEPTH_MAX)) + "/x.txt"  # in 32 folders
    path = write(tmp_path, tar_gz({**BASE, deepest: "ok"}))
    dest = tmp_path / "out"
    dest.mkdir()
    _, root = extract(path, dest, pack_ref="p", limits=LIMITS)
    assert (root / deepest).read_text() == "ok"
    too_deep = "/".join(f"d{i}" for i in range(DEPTH_MAX + 1)) + "/x.txt"
    (tmp_path / "again").mkdir()
    message = refused(tmp_path / "again", tar_gz({**BASE, too_deep: "x"}))
    assert f"nested deeper than {DEPTH_MAX} folders" in message
    (tmp_path / "folder").mkdir()  # a folder entry of its own, 33 deep
    folder = tar_member("/".join(f"d{i}" for i in range(DEPTH_MAX + 1)), tarfile.DIRTYPE)
    assert f"nested deeper than {DEPTH_MAX} folders" in refused(tmp_path / "folder", tar_gz(BASE, extra=folder))


@pytest.mark.parametrize(
    "names",
    [["a", "a/b/c.txt"], ["a/b/c.txt", "a/b"], ["a/b/c.txt", "a"], ["x/y/z.txt", "x/y/w.txt", "x"]],
)
def test_a_file_where_a_folder_is_refused_whatever_the_order(tmp_path, names):
    files = {**BASE, **{n: "x" for n in names}}
    assert refused(tmp_path, tar_gz(files))
