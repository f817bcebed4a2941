"""The command line's own configuration: the server and the tokens `attune login` got.

Kept in ``$ATTUNE_CLI_CONFIG``, else ``$XDG_CONFIG_HOME/attune/cli.json``, else
``~/.config/attune/cli.json``; the file is created with mode 0600 (its folder 0700)
because it holds tokens. The server is ``--server``, else ``$ATTUNE_SERVER``, else
the one of the last login, else http://localhost:8080.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_SERVER = "http://localhost:8080"


def config_file() -> Path:
    explicit = os.environ.get("ATTUNE_CLI_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "attune" / "cli.json"


class CliConfig:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_file()
        self.data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except ValueError:
                self.data = {}  # a damaged file: as if never logged in
        self.data.setdefault("servers", {})

    @property
    def server(self) -> str:
        return os.environ.get("ATTUNE_SERVER") or self.data.get("server") or DEFAULT_SERVER

    def _entry(self, server: str) -> dict[str, Any]:
        entry = self.data["servers"].get(server.rstrip("/"))
        return entry if isinstance(entry, dict) else {}

    def token_for(self, server: str) -> str | None:
        return os.environ.get("ATTUNE_TOKEN") or self._entry(server).get("access_token")

    def refresh_token_for(self, server: str) -> str | None:
        return None if os.environ.get("ATTUNE_TOKEN") else self._entry(server).get("refresh_token")

    def login_for(self, server: str) -> str | None:
        return self._entry(server).get("login")

    def save_tokens(self, server: str, login: str | None, tokens: dict[str, Any]) -> None:
        server = server.rstrip("/")
        self.data["server"] = server
        self.data["servers"][server] = {
            "login": login,
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token", self._entry(server).get("refresh_token")),
        }
        self.save()

    def forget(self, server: str) -> bool:
        found = self.data["servers"].pop(server.rstrip("/"), None) is not None
        self.save()
        return found

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2)
        os.chmod(tmp, 0o600)  # whatever the umask
        os.replace(tmp, self.path)
