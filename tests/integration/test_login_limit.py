"""The login limit is atomic: attempts are counted before the password is checked, so
parallel guesses cannot outrun it (Redis in server mode, the process's counters in the
embedded mode or when Redis is down)."""

from __future__ import annotations

import threading
import uuid

import pytest

from attune.errors import TooManyRequests


def _parallel_attempts(settings, login: str, n: int) -> tuple[int, int]:
    from attune.auth import throttle

    barrier = threading.Barrier(n)
    passed, refused = [], []

    def go() -> None:
        barrier.wait()
        try:
            throttle.attempt(settings, login, "203.0.113.9")
            passed.append(1)
        except TooManyRequests:
            refused.append(1)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(passed), len(refused)


def test_parallel_attempts_pass_at_most_the_limit(db):
    from attune.config import get_settings

    settings = get_settings()
    passed, refused = _parallel_attempts(settings, f"victim-{uuid.uuid4().hex[:6]}", 60)
    assert passed == settings.auth.login_max_failures and refused == 60 - passed


def test_redis_down_falls_back_to_counting_in_the_process(db, monkeypatch):
    from attune.auth import throttle
    from attune.config import get_settings

    monkeypatch.setattr(throttle, "redis_url", lambda settings: "redis://127.0.0.1:1/0")  # nothing listens there
    settings = get_settings()
    passed, refused = _parallel_attempts(settings, f"victim-{uuid.uuid4().hex[:6]}", 30)
    assert passed == settings.auth.login_max_failures and refused == 30 - passed


def test_parallel_wrong_logins_check_at_most_the_limit(client, user, monkeypatch):
    """Through HTTP (the app in process, its thread pool): 40 wrong passwords at once."""
    from attune.config import get_settings

    monkeypatch.setattr(get_settings().auth, "login_max_failures", 5)
    bad = {"login": user["login"], "password": "wrong-wrong-wrong"}
    barrier = threading.Barrier(40)
    statuses: list[int] = []

    def go() -> None:
        barrier.wait()
        statuses.append(client.post("/auth/login", json=bad).status_code)

    threads = [threading.Thread(target=go) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(401) == 5 and statuses.count(429) == 35, statuses
    assert client.post("/auth/login", json=user).status_code == 429  # the right password too, for a while


@pytest.mark.parametrize("failures", [0, 1])
def test_a_success_starts_the_count_again(client, user, monkeypatch, failures):
    from attune.config import get_settings

    monkeypatch.setattr(get_settings().auth, "login_max_failures", 2)
    bad = {"login": user["login"], "password": "wrong-wrong-wrong"}
    for _ in range(3):
        for _ in range(failures):
            assert client.post("/auth/login", json=bad).status_code == 401
        assert client.post("/auth/login", json=user).status_code == 200
