"""The README's quickstart, as a new user runs it: `make run`'s script (scripts/run.sh, so
`attune dev`) in a fresh folder, then the quickstart's commands, word for word, in the
embedded mode and with Postgres and Redis configured."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e


def _outside_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def _block(marker: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    after = text.split(f"<!-- {marker}", 1)[1]
    body = after.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in body.splitlines() if line.strip() and not line.startswith("source ")]


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.server_only)])
def fresh_run(request, configured, tmp_path):
    """A new user's checkout: the example pack, scripts/run.sh and the installed venv."""
    home = tmp_path / "attune"
    (home / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run.sh", home / "scripts" / "run.sh")
    shutil.copytree(ROOT / "examples", home / "examples")
    (home / ".venv").symlink_to(Path(sys.executable).parent.parent)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTUNE")}
    env.update(ATTUNE__API__PORT=str(port), ATTUNE_WORKER_CONCURRENCY="1", ATTUNE__METRICS__WORKER_PORT="0")
    if request.param == "server":
        from sqlalchemy import create_engine, make_url, text
        from sqlalchemy.pool import NullPool

        test_url = make_url(configured["ATTUNE__DATABASE__URL"])
        name = f"{test_url.database}_quickstart"  # beside the test database: two runs never share it
        url = test_url.set(database=name)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        import redis

        from attune.auth.throttle import PREFIX

        # earlier tests (the OpenAPI fuzz logs in as its example login, admin) may have
        # locked admin out on this Redis: a new user's Redis has no such past
        client = redis.Redis.from_url(configured["ATTUNE__CELERY__BROKER_URL"])
        for key in client.scan_iter(PREFIX + "*"):
            client.delete(key)
        client.close()
        env.update(
            ATTUNE__DATABASE__URL=url.render_as_string(hide_password=False),
            ATTUNE__CELERY__BROKER_URL=configured["ATTUNE__CELERY__BROKER_URL"],
            ATTUNE__CELERY__TASK_QUEUE=f"attune-quickstart-{uuid.uuid4().hex[:6]}",
        )
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(["bash", "scripts/run.sh"], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{server}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"make run's script did not serve:\n{(tmp_path / 'run.log').read_text()}")
        time.sleep(0.2)
    cli_env = {
        **env,
        "PATH": f"{home / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "ATTUNE_CLI_CONFIG": str(tmp_path / "cli.json"),
        "ATTUNE_SERVER": server,
    }
    try:
        yield home, cli_env, request.param, tmp_path / "run.log"
    finally:
        proc.terminate()  # Ctrl-C's equivalent: the worker stops with the API
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_readme_quickstart(fresh_run):
    home, env, mode, log = fresh_run
    printed = log.read_text()
    assert "attune dev: SQLite" in printed if mode == "embedded" else "attune dev: configured database" in printed
    password = re.search(r"password '([^']+)'", (home / ".attune" / "initial-admin.txt").read_text()).group(1)
    port = int(env["ATTUNE__API__PORT"])
    # development binds this machine only, and says where
    assert f"API on http://localhost:{port}" in printed and "ATTUNE__API__HOST=0.0.0.0" in printed
    outside = _outside_address()
    if outside is not None:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{outside}:{port}/health", timeout=2)

    def run(line: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], cwd=home, env=env, input=stdin, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    for line in _block("quickstart-commands"):
        if line.startswith("attune login"):
            r = run(line.split("#")[0] + " --password-stdin", stdin=password + "\n")  # instead of the prompt
        else:
            r = run(line)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
    r = run("attune pack show hello --json")
    shown = json.loads(r.stdout)["data"]
    assert sorted(w["ref"] for w in shown["workflows"]) == ["hello.fan_out", "hello.greet"]
    assert all(j["status"] == "succeeded" for j in shown["jobs"])

    codes = []
    for line in _block("quickstart-error"):
        r = run(line)
        codes.append(r.returncode)
        if line.startswith("attune pack validate"):
            assert "workflows/broken.yaml" in r.stdout and "tasks" in r.stdout, r.stdout
    assert codes == [0, 1, 0]
