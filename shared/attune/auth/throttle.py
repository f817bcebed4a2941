"""Slows brute force on login: attempts counted per login and client address.

Every attempt is counted *before* its password is checked, in one atomic step that
increments and reads the counter (Redis ``INCR`` in a ``MULTI``; in the process, under a
lock). Past ``auth.login_max_failures`` attempts the pair is refused (429) until the
window, which starts at the first attempt, ends (``auth.login_lockout_seconds``). So
however many guesses arrive at once, at most ``login_max_failures`` of them are checked.
A successful login clears the count. Unknown and known logins are counted alike, so the
refusal reveals nothing.

Counters live in Redis (shared by every API process). Without Redis (embedded mode, one
API process) they live in the process; if Redis is unreachable the process's own
counters stand in (logged), so a broker outage does not lift the limit.
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
    """The same counting for one process: key -> (attempts, end of the window)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, window: float) -> tuple[int, float]:
        """Counts one attempt; returns the attempts in the window and seconds left."""
        with self.lock:
            now = time.monotonic()
            count, until = self.counts.get(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + window
            self.counts[key] = (count + 1, until)
            if len(self.counts) > 100_000:  # bounded: forget windows that ended
                self.counts = {k: v for k, v in self.counts.items() if v[1] > now}
            return count + 1, until - now

    def delete(self, key: str) -> None:
        with self.lock:
            self.counts.pop(key, None)


_local = _LocalCounters()


def _count_in_redis(url: str, key: str, window: int) -> tuple[int, float]:
    pipe = _client(url).pipeline(transaction=True)  # MULTI ... EXEC: one atomic step
    pipe.incr(key)
    pipe.expire(key, window, nx=True)
    pipe.ttl(key)
    count, _, ttl = pipe.execute()
    return int(count), float(ttl)


def _count(settings: Settings, key: str) -> tuple[int, float]:
    """Counts one attempt under ``key``: the attempts in its window and the seconds left."""
    window = settings.auth.login_lockout_seconds
    url = redis_url(settings)
    if url is not None:
        try:
            return _count_in_redis(url, key, window)
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s): counting in this process", exc)
    return _local.incr(key, window)


def attempt(settings: Settings, login: str, address: str) -> None:
    """Counts one login attempt for this login and address, before its password is
    checked; raises TooManyRequests when the attempts in the window exceed the limit."""
    count, left = _count(settings, _key(login, address))
    if count > settings.auth.login_max_failures:
        wait = max(int(left), 1)
        raise TooManyRequests(f"Too many failed logins: try again in {wait} seconds", retry_after=wait)


# API keys are guessed per address and per key: a key's secret (one bucket per existing key
# id), or any key at all (one bucket for the unknown and malformed ones), under names no
# login can have (logins have no NUL). Ten garbage keys from an address (a CI runner shared
# by many pipelines) used to lock every key out of it; now they lock out garbage only, and
# ten wrong secrets of one key lock out that key only, from that address.
KEY_GUESSES = "\x00api-key\x00"


def _peek(settings: Settings, key: str) -> tuple[int, float]:
    url = redis_url(settings)
    if url is not None:
        try:
            pipe = _client(url).pipeline(transaction=True)
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = pipe.execute()
            return int(count or 0), float(ttl)
        except redis.RedisError as exc:
            log.warning("key throttle: Redis unavailable (%s): counting in this process", exc)
    with _local.lock:
        count, until = _local.counts.get(key, (0, 0.0))
        left = until - time.monotonic()
    return (count, left) if left > 0 else (0, 0.0)


def refuse_key_guesses(settings: Settings, address: str, bucket: str) -> None:
    """Before an API key is checked: 429 when this address sent more than
    ``auth.login_max_failures`` refused guesses into ``bucket`` (a key's id, or the one of
    unknown keys) in the window (which starts at the first)."""
    count, left = _peek(settings, _key(KEY_GUESSES + bucket, address))
    if count >= settings.auth.login_max_failures:
        wait = max(int(left), 1)
        raise TooManyRequests(f"Too many invalid API keys: try again in {wait} seconds", retry_after=wait)


def key_refused(settings: Settings, address: str, bucket: str) -> None:
    """A guess from this address was refused (an unknown key, or a wrong secret). Only
    guesses count: a pipeline's many good calls never lock it out, nor a revoked or expired
    key, which answers 401 with its reason every time."""
    _count(settings, _key(KEY_GUESSES + bucket, address))


def reset(settings: Settings, login: str, address: str) -> None:
    """A successful login: the count for this login and address starts again."""
    key = _key(login, address)
    _local.delete(key)
    url = redis_url(settings)
    if url is None:
        return
    try:
        _client(url).delete(key)
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s)", exc)
