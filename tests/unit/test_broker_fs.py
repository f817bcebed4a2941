"""The embedded broker's messages appear whole: a consumer never sees a file being written."""

from __future__ import annotations

from queue import Empty

import pytest
from kombu import Connection


def _connection(tmp_path):
    from attune.broker import fs as broker_fs

    broker_fs.install()
    (tmp_path / "q").mkdir()
    (tmp_path / "c").mkdir()
    options = {"data_folder_in": str(tmp_path / "q"), "data_folder_out": str(tmp_path / "q"),
               "control_folder": str(tmp_path / "c")}  # fmt: skip
    return Connection("filesystem://localhost/", transport_options=options)


def test_a_message_is_invisible_until_complete(tmp_path, monkeypatch):
    from attune.broker import fs as broker_fs

    with _connection(tmp_path) as conn:
        channel = conn.default_channel
        assert isinstance(channel, broker_fs.Channel)
        seen_before_rename = []
        real_replace = broker_fs.os.replace

        def replace(src, dst):
            # the file is fully written here, but not yet under a name a consumer looks for
            try:
                seen_before_rename.append(channel._get("jobs"))
            except Empty:
                seen_before_rename.append(None)
            real_replace(src, dst)

        monkeypatch.setattr(broker_fs.os, "replace", replace)
        channel._put("jobs", {"body": "x" * 10_000})
        assert seen_before_rename == [None]
        assert channel._get("jobs") == {"body": "x" * 10_000}
        assert not list((tmp_path / "q").iterdir())  # nothing left behind
        with pytest.raises(Empty):
            channel._get("jobs")


def test_partial_files_are_ignored(tmp_path):
    with _connection(tmp_path) as conn:
        (tmp_path / "q" / "1_abc.jobs.msg.part").write_text("")  # a producer still writing
        with pytest.raises(Empty):
            conn.default_channel._get("jobs")
