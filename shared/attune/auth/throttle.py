"""Slows brute force on login: failed attempts counted per login and client address.

Counters live in Redis (shared by every API process) with a window that starts
at the first failure; past ``auth.login_max_failures`` the pair is refused
(429) until the window ends, before any password is checked. Unknown and
known logins are counted alike, so the refusal reveals nothing. If Redis is
unreachable the check is skipped (logged): logins keep working. Without Redis
(embedded mode, one API process) the counters live in the process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from functools import lru_cache

import redis

from attune.broker.notify import redis_url
from attune.config import Settings
from attune.errors import TooManyRequests

log = logging.getLogger(__name__)
PREFIX = "attune:login-failures:"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _key(login: str, address: str) -> str:
    digest = hashlib.sha256(f"{login.lower()}\x00{address}".encode()).hexdigest()[:32]
    return PREFIX + digest


class _LocalCounters:
    """The same counting for one process: key -> (failures, end of the window)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}

    def get(self, key: str) -> tuple[int, float]:
        with self.lock:
            count, until = self.counts.get(key, (0, 0.0))
            if until <= time.monotonic():
                self.counts.pop(key, None)
                return 0, 0.0
            return count, until

    def incr(self, key: str, window: float) -> None:
        with self.lock:
            now = time.monotonic()
            count, until = self.counts.get(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + window
            self.counts[key] = (count + 1, until)
            if len(self.counts) > 100_000:  # bounded: forget windows that ended
                self.counts = {k: v for k, v in self.counts.items() if v[1] > now}

    def delete(self, key: str) -> None:
        with self.lock:
            self.counts.pop(key, None)


_local = _LocalCounters()


def check(settings: Settings, login: str, address: str) -> None:
    """Raises TooManyRequests when this login and address failed too often recently."""
    url = redis_url(settings)
    if url is None:
        failures, until = _local.get(_key(login, address))
        if failures >= settings.auth.login_max_failures:
            wait = max(int(until - time.monotonic()), 1)
            raise TooManyRequests(f"Too many failed logins: try again in {wait} seconds", retry_after=wait)
        return
    try:
        client = _client(url)
        key = _key(login, address)
        failures = int(client.get(key) or 0)
        if failures >= settings.auth.login_max_failures:
            wait = max(int(client.ttl(key)), 1)
            raise TooManyRequests(f"Too many failed logins: try again in {wait} seconds", retry_after=wait)
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s): not applied", exc)


def record_failure(settings: Settings, login: str, address: str) -> None:
    url = redis_url(settings)
    if url is None:
        _local.incr(_key(login, address), settings.auth.login_lockout_seconds)
        return
    try:
        key = _key(login, address)
        pipe = _client(url).pipeline()
        pipe.incr(key)
        pipe.expire(key, settings.auth.login_lockout_seconds, nx=True)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s): failure not counted", exc)


def reset(settings: Settings, login: str, address: str) -> None:
    url = redis_url(settings)
    if url is None:
        _local.delete(_key(login, address))
        return
    try:
        _client(url).delete(_key(login, address))
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s)", exc)
