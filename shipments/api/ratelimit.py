"""Request limits per API key (and per carrier webhook sender), on the
shared limiter (shipments.limiter): counts in Redis when REDIS_URL is set,
in this process's memory otherwise, and requests let through while Redis is
away.

The limit is ``API_RATE_LIMIT`` ("requests/seconds", e.g. "1200/60"): at
most that many requests per key in a fixed window.
"""

from __future__ import annotations

import functools

from django.conf import settings
from limits import RateLimitItem

from .. import limiter


def parse_rate(rate: str) -> tuple[int, int]:
    requests, _, seconds = rate.partition("/")
    limit, window = int(requests), int(seconds or 1)
    if limit < 1 or window < 1:
        raise ValueError(f"API_RATE_LIMIT must look like '1200/60', not {rate!r}.")
    return limit, window


@functools.lru_cache(maxsize=8)
def _api_limit(rate: str) -> RateLimitItem:
    limit, window = parse_rate(rate)
    return limiter.per_seconds(limit, window, namespace="api")


def hit(key: str) -> int:
    """Count one request for ``key``; returns 0 if it is allowed, otherwise
    the seconds to wait until the window ends (for Retry-After)."""
    return limiter.hit(_api_limit(settings.API_RATE_LIMIT), key)
