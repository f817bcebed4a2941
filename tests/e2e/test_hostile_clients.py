"""A real `attune api` (uvicorn) against clients that misbehave: chunked bodies with no
end, Content-Lengths that lie, 200 MB streamed at the login route, 60 password guesses
at once, refresh tokens raced and replayed, and the CLI following token rotation."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.conftest import TEST_SECRET, api_process

pytestmark = pytest.mark.e2e
LIMIT = 1024 * 1024  # api.max_body_bytes, the default


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Reads one response (headers, then Content-Length bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def _request_head(path: str, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{extra}\r\n").encode()


def _chunk(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _push_chunks(sock: socket.socket, total: int, size: int = 256 * 1024) -> int:
    """Sends up to ``total`` bytes of chunked body (never the last chunk); stops when the
    server stops reading and closes. Returns the bytes sent."""
    sent = 0
    block = _chunk(b"x" * size)
    try:
        sock.sendall(_chunk(b'{"login": "alice", "password": "'))
        while sent < total:
            sock.sendall(block)
            sent += size
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_chunked_body_without_end_is_413_before_the_route_reads_it(live_server):
    """The body never ends (no last chunk): the only way to answer is to count the bytes
    as they come. No token is needed: the limit comes before authentication."""
    for path in ("/auth/login", "/api/v1/packs", "/api/v1/packs/x/workflows/sync", "/no/such/route"):
        sock = _connect(live_server)
        try:
            sock.sendall(_request_head(path, "Transfer-Encoding: chunked\r\n"))
            _push_chunks(sock, 2 * LIMIT)
            status, headers, body = _read_response(sock)
            assert status == 413, (path, status, body)
            assert json.loads(body)["error"] == f"Request body too large (limit {LIMIT} bytes)"
            assert headers.get("connection") == "close"
            assert headers.get("x-request-id")
        finally:
            sock.close()


def test_content_length_that_lies(live_server):
    # announces more than the limit: refused before a byte of the body is read
    sock = _connect(live_server)
    try:
        sock.sendall(_request_head("/auth/login", f"Content-Length: {50 * LIMIT}\r\n") + b'{"login": ')
        status, _, body = _read_response(sock)
        assert status == 413, body
    finally:
        sock.close()
    # announces a small body and sends a chunked one: never read whole into a route
    sock = _connect(live_server)
    try:
        sock.sendall(_request_head("/auth/login", "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n"))
        _push_chunks(sock, 2 * LIMIT)
        status, _, body = _read_response(sock)
        assert status in (400, 413), (status, body)
    finally:
        sock.close()
    # not a number
    sock = _connect(live_server)
    try:
        sock.sendall(_request_head("/auth/login", "Content-Length: 12abc\r\n") + b"{}")
        status, _, _ = _read_response(sock)
        assert status == 400
    finally:
        sock.close()


@contextmanager
def _api_process(configured: dict[str, str], tmp_path: Path, **env: str) -> Iterator[tuple[str, int]]:
    """An `attune api` process of the test's own (its memory, its settings)."""
    with api_process({**os.environ, **configured, **env}, tmp_path / "api.log") as found:
        yield found


@pytest.fixture
def own_api(configured: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, int]]:
    with _api_process(configured, tmp_path) as api:
        yield api


def test_a_body_that_never_finishes_arriving_is_408(configured, tmp_path):
    """A client that announces a body and stops sending does not hold the connection."""
    with _api_process(configured, tmp_path, ATTUNE__API__BODY_TIMEOUT_SECONDS="1") as (url, _):
        for head, start in (
            ("Content-Length: 100\r\n", b'{"login": '),
            ("Transfer-Encoding: chunked\r\n", _chunk(b'{"login": ')),
        ):
            sock = _connect(url)
            try:
                sock.sendall(_request_head("/auth/login", head) + start)
                status, headers, body = _read_response(sock)
                assert status == 408, body
                assert json.loads(body)["error"] == "Request body not received within 1 seconds"
                assert headers.get("connection") == "close"
            finally:
                sock.close()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the API's peak memory from /proc")
def test_200_mb_chunked_body_does_not_grow_the_api(own_api):
    url, pid = own_api
    httpx.post(f"{url}/auth/login", json={"login": "warm", "password": "up"})  # imports, pools: warmed
    before = _peak_rss_mb(pid)
    sock = _connect(url)
    try:
        sock.sendall(_request_head("/auth/login", "Transfer-Encoding: chunked\r\n"))
        sent = _push_chunks(sock, 200 * 1024 * 1024)
        status, _, _ = _read_response(sock)
    finally:
        sock.close()
    after = _peak_rss_mb(pid)
    print(f"API peak RSS {before:.0f} MB -> {after:.0f} MB; client pushed {sent / 2**20:.0f} MB before the close")
    assert status == 413
    assert after - before < 32, (before, after)
    assert httpx.get(f"{url}/health").status_code == 200


def _make_user(login: str, password: str) -> None:
    from attune.db.engine import session_scope
    from attune.users.service import create_user

    with session_scope() as session:
        create_user(session, login, password)


def test_sixty_parallel_wrong_passwords_check_at_most_the_limit(live_server, db):
    login = f"target-{uuid.uuid4().hex[:6]}"  # its own counter in the server process, whatever ran before
    _make_user(login, "the right password")
    statuses: list[int] = []
    barrier = threading.Barrier(60)

    def guess(i: int) -> None:
        barrier.wait()
        r = httpx.post(f"{live_server}/auth/login", json={"login": login, "password": f"guess-{i}"}, timeout=120)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    checked = statuses.count(401)
    print(f"60 parallel wrong passwords: {checked} checked (401), {statuses.count(429)} refused (429)")
    assert checked == 10 and statuses.count(429) == 50, sorted(statuses)
    r = httpx.post(f"{live_server}/auth/login", json={"login": login, "password": "the right password"})
    assert r.status_code == 429  # and the right one waits too


def test_parallel_refreshes_with_one_token_against_the_server(live_server, user):
    tokens = httpx.post(f"{live_server}/auth/login", json=user).json()["data"]
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def go() -> None:
        barrier.wait()
        r = httpx.post(f"{live_server}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=60)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [401] * 9


def test_cli_keeps_the_rotated_refresh_token_and_logout_revokes_it(cli, live_server, user):
    r = cli("login", "--user", user["login"], "--password-stdin", stdin=user["password"] + "\n")
    assert r.returncode == 0, r.stderr

    def entry() -> dict:
        return json.loads(cli.config.read_text())["servers"][live_server]

    def expire_access_token() -> None:
        data = json.loads(cli.config.read_text())
        claims = jwt.decode(entry()["access_token"], TEST_SECRET, algorithms=["HS256"])
        expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, TEST_SECRET, algorithm="HS256")
        data["servers"][live_server]["access_token"] = expired
        cli.config.write_text(json.dumps(data))

    seen = [entry()["refresh_token"]]
    for _ in range(2):  # twice: the second refresh needs the token the first one returned
        expire_access_token()
        r = cli("pack", "list")
        assert r.returncode == 0, r.stderr
        seen.append(entry()["refresh_token"])
    assert len(set(seen)) == 3

    r = cli("logout")
    assert r.returncode == 0 and "Logged out" in r.stderr
    r = httpx.post(f"{live_server}/auth/refresh", json={"refresh_token": seen[-1]})
    assert r.status_code == 401 and r.json()["error"] == "Refresh token revoked: log in again"
    assert cli("pack", "list").returncode == 3


def _wrong_logins(url: str, login: str, forwarded: list[str]) -> list[int]:
    return [
        httpx.post(f"{url}/auth/login", json={"login": login, "password": "wrong-password"},
                   headers={"X-Forwarded-For": address}, timeout=30).status_code
        for address in forwarded
    ]  # fmt: skip


def test_a_client_cannot_choose_its_address_with_x_forwarded_for(configured, tmp_path, user):
    """Found from outside: uvicorn believed X-Forwarded-For from 127.0.0.1 by default, so a
    local client (or one behind a local proxy) got a fresh login budget per header: 30
    guesses past the lock all checked, then the right password in. Now believed only from
    api.forwarded_allow_ips, which a deployment behind a proxy sets to the proxy's address."""
    from attune.config import get_settings

    _purge_counters(configured)
    limit = get_settings().auth.login_max_failures
    with _api_process(configured, tmp_path) as (url, _):
        statuses = _wrong_logins(url, user["login"], [f"10.0.0.{n}" for n in range(limit + 3)])
        assert statuses[:limit] == [401] * limit and set(statuses[limit:]) == {429}, statuses
    _purge_counters(configured)
    with _api_process(configured, tmp_path, ATTUNE__API__FORWARDED_ALLOW_IPS="127.0.0.1") as (url, _):
        statuses = _wrong_logins(url, user["login"], [f"10.0.1.{n}" for n in range(limit + 3)])
        assert set(statuses) == {401}, statuses  # behind a trusted proxy: each client its own count


def _purge_counters(configured: dict[str, str]) -> None:
    from tests.conftest import _purge_queue

    _purge_queue(configured["ATTUNE__CELERY__BROKER_URL"])
