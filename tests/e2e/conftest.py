"""The `attune` command line as a client of the session's live server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture
def cli(live_server, user, tmp_path):
    env = {**os.environ, "ATTUNE_CLI_CONFIG": str(tmp_path / "cli.json"), "ATTUNE_SERVER": live_server}
    env.pop("ATTUNE_TOKEN", None)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "attune_cli.main", *args],
            input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
        )  # fmt: skip

    run.config = tmp_path / "cli.json"  # type: ignore[attr-defined]
    run.user = user  # type: ignore[attr-defined]
    return run


def login(cli) -> None:
    """Logs the `cli` fixture's user in (the password on stdin)."""
    r = cli("login", "--user", cli.user["login"], "--password-stdin", stdin=cli.user["password"] + "\n")
    assert r.returncode == 0, r.stderr
