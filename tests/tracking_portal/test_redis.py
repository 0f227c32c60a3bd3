"""The one Redis client factory (tracking_portal/redis.py): every client
gets the same timeouts, TLS rules and outage record."""

import asyncio
import logging
import socket
import ssl
import threading
import time
import uuid

import pytest
from django.core.cache import caches

from pages.live import subscriber
from shipments import limiter
from tests.conftest import free_port_in
from tracking_portal import redis as redis_factory


def test_every_client_gets_the_short_timeouts(settings):
    settings.REDIS_SOCKET_TIMEOUT = 0.25
    url = "redis://127.0.0.1:6390/3"
    for kwargs in (
        redis_factory.client(url).connection_pool.connection_kwargs,
        redis_factory.pool(url).connection_kwargs,
    ):
        assert kwargs["socket_timeout"] == 0.25
        assert kwargs["socket_connect_timeout"] == 0.25


def test_rediss_verifies_certificates():
    assert redis_factory.connection_options("rediss://cache.example:6380/0")["ssl_cert_reqs"] == "required"
    assert "ssl_cert_reqs" not in redis_factory.connection_options("redis://127.0.0.1:6379/0")
    pool = redis_factory.client("rediss://cache.example:6380/0").connection_pool
    assert pool.connection_kwargs["ssl_cert_reqs"] == "required"
    # The live subscriber's connection too.
    context = redis_factory.tls_context("rediss://cache.example:6380/0")
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert redis_factory.tls_context("redis://127.0.0.1:6379/0") is None


def test_the_subscribers_connection_gives_up_after_the_short_timeout(settings):
    """A server that accepts and never answers (here: never lets the TLS
    handshake finish) costs one REDIS_SOCKET_TIMEOUT, not a hang."""
    settings.REDIS_SOCKET_TIMEOUT = 0.2
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"rediss://127.0.0.1:{listener.getsockname()[1]}/0"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(redis_factory.open_connection(url))
        assert time.monotonic() - started < 2
    finally:
        listener.close()


def test_one_outage_record_per_server_whatever_the_database():
    first = redis_factory.client("redis://127.0.0.1:6391/0")
    second = redis_factory.client("redis://127.0.0.1:6391/5")
    assert first.outage is second.outage is redis_factory.outage_of("redis://127.0.0.1:6391/9")
    assert redis_factory.outage_of("redis://127.0.0.1:6392/0") is not first.outage


def test_the_shared_client_is_one_and_none_during_an_outage(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port_in(range(8560, 8580))}/0"
    shared = redis_factory.shared_client()
    assert shared is redis_factory.shared_client()
    with pytest.raises(redis_factory.OUTAGE_ERRORS):
        shared.ping()
    assert redis_factory.shared_client() is None
    # The limiter leaves the same server alone without trying it.
    assert limiter.hit(limiter.per_seconds(1, 60, namespace="test-factory"), "k") == 0
    limiter.reset()


def test_without_redis_there_is_no_shared_client(settings):
    settings.REDIS_URL = ""
    assert redis_factory.shared_client() is None


def test_djangos_cache_uses_the_shared_client(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    cache = caches.create_connection("default")
    assert isinstance(cache, redis_factory.SharedRedisCache)
    key = f"test-factory-{uuid.uuid4().hex}"
    assert cache.add(key, 1, 30) and not cache.add(key, 2, 30)
    assert cache.get(key) == 1
    assert cache._cache.get_client(key, write=True) is redis_factory.shared_client()
    cache.delete(key)


class FakeHub:
    def __init__(self):
        self.listening = asyncio.Event()

    def deliver(self, token, payload):
        pass

    def look_again(self):
        pass

    def subscribed(self):
        self.listening.set()

    def unsubscribed(self):
        self.listening.clear()


def test_the_subscriber_backs_off_while_redis_is_away(settings, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port_in(range(8580, 8600))}/0"

    async def scenario():
        task = asyncio.ensure_future(subscriber.hold_subscription(FakeHub()))
        await asyncio.sleep(subscriber.FIRST_RETRY_SECONDS * 3 + 0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.WARNING, logger=subscriber.__name__):
        asyncio.run(scenario())
    delays = [record.args[0] for record in caplog.records if "lost the Redis subscription" in record.message]
    assert delays[:2] == [subscriber.FIRST_RETRY_SECONDS, subscriber.FIRST_RETRY_SECONDS * 2]


def test_a_busy_shared_pool_waits_and_is_no_outage(settings):
    """Every connection busy: a caller waits for one (REDIS_SOCKET_TIMEOUT at
    most); if none comes it fails alone, and Redis is not left alone for
    the rest of the process as it is when the server is away."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    pool = redis_factory.WaitingPool.from_url(settings.REDIS_URL, max_connections=1, timeout=0.3)
    busy = redis_factory.GuardedRedis(connection_pool=pool)
    busy.outage = redis_factory.outage_of(settings.REDIS_URL)
    held = pool.get_connection()
    with pytest.raises(redis_factory.PoolExhausted):
        busy.ping()
    assert not busy.outage.active
    threading.Timer(0.1, pool.release, args=[held]).start()
    assert busy.ping()  # waited for the one connection
    pool.disconnect()


def test_the_shared_client_waits_for_a_connection(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    redis_factory.forget_shared_client()
    try:
        pool = redis_factory.shared_client().connection_pool
        assert isinstance(pool, redis_factory.WaitingPool)
        assert pool.max_connections == redis_factory.SHARED_MAX_CONNECTIONS
        assert pool.timeout == settings.REDIS_SOCKET_TIMEOUT
    finally:
        redis_factory.forget_shared_client()
