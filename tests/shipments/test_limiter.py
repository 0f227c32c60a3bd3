"""The shared limiter (shipments.limiter) and the API's hit(key) on it."""

import pytest
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from shipments import limiter
from shipments.api import ratelimit
from tests.conftest import free_port_in


@pytest.fixture(autouse=True)
def fresh_limits():
    limiter.reset()
    yield
    limiter.reset()


def test_hit_allows_the_limit_then_says_how_long_to_wait(settings):
    settings.API_RATE_LIMIT = "3/60"
    assert [ratelimit.hit("key:a") for _ in range(3)] == [0, 0, 0]
    assert 1 <= ratelimit.hit("key:a") <= 60
    # Each key has its own allowance, and a limit its own namespace.
    assert ratelimit.hit("key:b") == 0
    assert limiter.hit(limiter.per_seconds(1, 60, namespace="other"), "key:a") == 0


def test_wait_does_not_count():
    item = limiter.per_seconds(1, 60, namespace="test")
    assert [limiter.wait(item, "k") for _ in range(5)] == [0] * 5
    assert limiter.hit(item, "k") == 0
    assert 1 <= limiter.wait(item, "k") <= 60


def test_counts_are_shared_through_redis_by_every_process(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    settings.API_RATE_LIMIT = "2/60"
    assert ratelimit.hit("key:shared") == 0
    # Another process: its own client and limiter on the same Redis.
    elsewhere = FixedWindowRateLimiter(RedisStorage(settings.REDIS_URL, key_prefix="ratelimit"))
    assert elsewhere.hit(limiter.per_seconds(2, 60, namespace="api"), "key:shared")
    assert ratelimit.hit("key:shared") > 0


def test_a_closed_port_lets_requests_through(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port_in(range(8540, 8560))}/0"
    settings.API_RATE_LIMIT = "1/60"
    assert [ratelimit.hit("key:c") for _ in range(3)] == [0, 0, 0]
