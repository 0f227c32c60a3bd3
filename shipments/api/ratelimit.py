"""Fixed-window request limits per API key (and per webhook sender).

With REDIS_URL set, counts live in Redis so that every process shares them,
through one client per process; without it, in this process's memory. The
limit is ``API_RATE_LIMIT`` ("requests/seconds", e.g. "1200/60").
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


def parse_rate(rate: str) -> tuple[int, int]:
    requests, _, seconds = rate.partition("/")
    limit, window = int(requests), int(seconds or 1)
    if limit < 1 or window < 1:
        raise ValueError(f"API_RATE_LIMIT must look like '1200/60', not {rate!r}.")
    return limit, window


class MemoryCounter:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._window: int | None = None

    def incr(self, key: str, window_start: int, window: int) -> int:
        with self._lock:
            if self._window != window_start:
                # A new window: the old counts can never matter again.
                self._counts.clear()
                self._window = window_start
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class RedisCounter:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def incr(self, key: str, window_start: int, window: int) -> int:
        name = f"ratelimit:{key}:{window_start}"
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, window + 1, nx=True)
        count, _ = pipe.execute()
        return int(count)


_counter_lock = threading.Lock()
_counter: tuple[str, MemoryCounter | RedisCounter] | None = None


def _get_counter() -> MemoryCounter | RedisCounter:
    global _counter
    url = settings.REDIS_URL
    with _counter_lock:
        if _counter is None or _counter[0] != url:
            _counter = (url, RedisCounter(url) if url else MemoryCounter())
        return _counter[1]


def hit(key: str) -> int:
    """Count one request for ``key``; returns 0 if it is allowed, otherwise
    the seconds to wait until the window ends (for Retry-After)."""
    limit, window = parse_rate(settings.API_RATE_LIMIT)
    now = time.time()
    window_start = int(now // window * window)
    try:
        count = _get_counter().incr(key, window_start, window)
    except redis.RedisError as exc:
        # Refusing all traffic because the limiter's store is down would turn
        # a Redis outage into an API outage; let requests through and say so.
        logger.warning("Rate limiter unavailable, request allowed: %s", exc)
        return 0
    if count <= limit:
        return 0
    return max(1, math.ceil(window_start + window - now))
