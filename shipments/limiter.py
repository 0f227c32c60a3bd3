"""Rate limits, counted by the `limits` library: in Redis when REDIS_URL is
set, so that every process shares the counts, in this process's memory
otherwise.

A limit is fixed-window: ``amount`` hits per ``seconds`` for each key, the
window starting at the key's first hit. A limiter that cannot reach Redis
lets the request through (refusing every customer because the counter's
store is away would turn a Redis outage into an outage of the portal), and
then leaves Redis alone for a few seconds, so that only the first request
after a failure waits for its short timeout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time

from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis import RedisError
from redis.backoff import NoBackoff
from redis.retry import Retry

from tracking_portal import redis as redis_factory

logger = logging.getLogger(__name__)

# A limiter sits in front of every look-up and API call: it waits for Redis
# at most REDIS_SOCKET_TIMEOUT (as every client on a request's path), once,
# as a retry would double the wait; then it leaves that Redis alone, as
# every guarded client does (tracking_portal.redis: one outage per server).

_lock = threading.Lock()
_limiter: tuple[str, FixedWindowRateLimiter] | None = None


def per_seconds(amount: int, seconds: int, *, namespace: str) -> RateLimitItem:
    """``amount`` hits per ``seconds``; the namespace keeps one limit's keys
    apart from another's."""
    return RateLimitItemPerSecond(amount, seconds, namespace=namespace)


def _get_limiter() -> FixedWindowRateLimiter:
    """The process's one limiter for the current REDIS_URL, with the one
    Redis client of the limits (the API's and the look-up's)."""
    global _limiter
    url = settings.REDIS_URL
    with _lock:
        if _limiter is None or _limiter[0] != url:
            if url:
                store = RedisStorage(
                    url,
                    connection_pool=redis_factory.pool(url, retry=Retry(NoBackoff(), 0)),
                    wrap_exceptions=True,
                    key_prefix="ratelimit",
                )
            else:
                store = MemoryStorage()
            _limiter = (url, FixedWindowRateLimiter(store))
        return _limiter[1]


def _backing_off() -> bool:
    return bool(settings.REDIS_URL) and redis_factory.outage_of(settings.REDIS_URL).active


def _store_failed(exc: Exception) -> None:
    if settings.REDIS_URL:
        redis_factory.outage_of(settings.REDIS_URL).failed()
    logger.warning(
        "Rate limiter unavailable for %.0f s, requests allowed: %s", settings.REDIS_OUTAGE_BACKOFF_SECONDS, exc
    )


def _seconds_left(limiter: FixedWindowRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]) -> int:
    reset_at = limiter.get_window_stats(item, *identifiers).reset_time
    return max(1, math.ceil(reset_at - time.time()))


def hit(item: RateLimitItem, *identifiers: str) -> int:
    """Count one hit; 0 if it is allowed, otherwise the seconds until the
    window ends (for Retry-After)."""
    if _backing_off():
        return 0
    try:
        limiter = _get_limiter()
        if limiter.hit(item, *identifiers):
            return 0
        return _seconds_left(limiter, item, identifiers)
    except (StorageError, RedisError) as exc:
        _store_failed(exc)
        return 0


def wait(item: RateLimitItem, *identifiers: str) -> int:
    """Like ``hit`` without counting: 0 while the key has hits left."""
    if _backing_off():
        return 0
    try:
        limiter = _get_limiter()
        if limiter.test(item, *identifiers):
            return 0
        return _seconds_left(limiter, item, identifiers)
    except (StorageError, RedisError) as exc:
        _store_failed(exc)
        return 0


def reset() -> None:
    """Forget every count and any outage (tests, and an operator's shell)."""
    global _limiter
    redis_factory.forget_outages()
    with _lock:
        if _limiter is not None:
            with contextlib.suppress(StorageError, RedisError):
                _limiter[1].storage.reset()
            _limiter = None
