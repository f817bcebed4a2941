"""Celery's filesystem broker (the embedded mode), with messages that appear whole.

kombu's filesystem transport writes each message in place, so a worker listing the
folder can read a file that is still empty: the JSON decode error then stops the
worker ("Unrecoverable error", seen in the embedded test run). Here a message is
written to a ``.part`` file (which no queue's pattern matches) and renamed into place,
which is atomic on one file system. ``install()`` makes ``filesystem://`` URLs use it.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
