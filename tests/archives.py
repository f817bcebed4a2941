"""Pack archives built in the tests: friendly ones, and ones crafted to break the server."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable

from tests.conftest import workflow_yaml

Files = dict[str, bytes | str]


def pack_files(ref: str, workflows: dict[str, str] | None = None, *, version: str = "1.0.0") -> Files:
    """A pack's files: pack.yaml, one action, its workflows (default: one valid workflow)."""
    files: Files = {
        "pack.yaml": f"ref: {ref}\nlabel: {ref} pack\nversion: '{version}'\ndescription: pushed\n",
        "actions/echo.yaml": "runner_type: shell\n",
    }
    for name, text in (workflows if workflows is not None else {"deploy.yaml": workflow_yaml(f"{ref}.echo")}).items():
        files[f"workflows/{name}"] = text
    return files


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def tar_gz(files: Files, *, prefix: str = "", extra: Callable[[tarfile.TarFile], None] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for name, value in files.items():
            data = _bytes(value)
            info = tarfile.TarInfo(f"{prefix}{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tf)
    return buf.getvalue()


def zip_bytes(files: Files) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in files.items():
            zf.writestr(name, _bytes(value))
    return buf.getvalue()


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", linkname: str = "") -> Callable:
    """An ``extra`` adding one raw member: a link, a device, a FIFO, any name."""

    def add(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    return add
