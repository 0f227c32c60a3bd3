"""The one Redis client factory: every client of the portal is made here.

The shared client (the page cache's, the live publisher's and Django's
cache's), the rate limiter's pool, the live subscriber's connection and
the broker's clients all come from here, with the same rules:

- timeouts: a request waits on Redis for one short REDIS_SOCKET_TIMEOUT, to
  connect and for each reply;
- TLS: a ``rediss://`` URL is spoken over TLS, certificates verified;
- the outage guard: a command that could not reach the server (refused,
  timed out, dropped) marks it down in this process for
  REDIS_OUTAGE_BACKOFF_SECONDS; until then every guarded client of that
  server fails at once with ``Skipped``, a redis ConnectionError, without
  touching the network, and each caller takes the way it already has for
  Redis being away: a page is rendered without the cache, a change is
  recorded without being announced (the outbox sweep and the pages' own
  polling catch up), a task is left in the outbox for the sweep.

Redis is one server for all of a process's clients, so the outage is kept
per server, not per client: what one client learnt, the others need not
wait to learn again.

The broker is the one whose pool kombu makes: its timeouts and TLS are set
in settings.py (CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BROKER_USE_SSL) to
the same rules, except a reply timeout long enough for kombu's BRPOP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from urllib.parse import unquote, urlsplit

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.client import Pipeline

# What says the server is away, rather than that a command was wrong.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
# The shared client's connections in one process: one per thread in a
# Redis call at once (under ASGI each request's sync code has a thread of
# its own). Past it a caller waits for one, for REDIS_SOCKET_TIMEOUT at
# most, rather than failing at once: redis-py's plain pool stops at 100 and
# raised at the morning rush's peak (bench/RESULTS.md "Morning rush").
SHARED_MAX_CONNECTIONS = 256


class Skipped(redis.ConnectionError):
    """Redis was not tried: it failed moments ago."""


class PoolExhausted(redis.exceptions.MaxConnectionsError):
    """Every connection of this process's pool stayed busy for the wait."""


class WaitingPool(redis.BlockingConnectionPool):
    """A pool that waits for a free connection, and says so apart from an
    unreachable server when none came (which must not leave Redis alone
    for the whole process, as an outage does)."""

    def get_connection(self, *args, **kwargs):
        try:
            return super().get_connection(*args, **kwargs)
        except redis.ConnectionError as exc:
            # What redis-py's wait for a free connection raises, and only it
            # (a failure to connect comes with the server's error).
            if str(exc) == "No connection available.":
                raise PoolExhausted(str(exc)) from exc
            raise


class Outage:
    """Whether one Redis server is to be left alone for now."""

    def __init__(self) -> None:
        self.until = 0.0

    @property
    def active(self) -> bool:
        return time.monotonic() < self.until

    def failed(self) -> None:
        self.until = time.monotonic() + settings.REDIS_OUTAGE_BACKOFF_SECONDS

    def check(self) -> None:
        if self.active:
            raise Skipped(f"Redis failed moments ago; left alone for {self.until - time.monotonic():.1f} s more")

    @contextlib.contextmanager
    def watch(self, errors: tuple[type[BaseException], ...] = OUTAGE_ERRORS):
        """Run a Redis call unless the server is left alone, and leave it
        alone if the call could not reach it (``errors``: what a library
        over redis-py turns those into, such as kombu's)."""
        self.check()
        try:
            yield
        except PoolExhausted:
            raise  # this process is busy, the server is not away
        except errors:
            self.failed()
            raise


_outages: dict[str, Outage] = {}


def outage_of(url: str) -> Outage:
    """The outage record of the server this URL names (whatever database)."""
    parts = urlsplit(url)
    return _outages.setdefault(f"{parts.hostname}:{parts.port or 6379}", Outage())


def forget_outages() -> None:
    """Every server is tried again (tests, and an operator's shell)."""
    for outage in _outages.values():
        outage.until = 0.0


class GuardedPipeline(Pipeline):
    outage: Outage

    def execute(self, raise_on_error: bool = True):
        if self.outage.active:
            self.reset()
        with self.outage.watch():
            return super().execute(raise_on_error)


class GuardedRedis(redis.Redis):
    outage: Outage

    def execute_command(self, *args, **options):
        with self.outage.watch():
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint=None) -> GuardedPipeline:
        pipe = GuardedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.outage = self.outage
        return pipe


def connection_options(url: str, **options) -> dict:
    """The connection settings every client of this URL gets: the short
    timeouts, and for ``rediss://`` verified certificates; ``options`` add
    to them or override them."""
    defaults: dict = {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
    }
    if urlsplit(url).scheme == "rediss":
        defaults["ssl_cert_reqs"] = "required"
    return defaults | options


def client(url: str, **options) -> GuardedRedis:
    """A redis-py client (thread-safe, pooled) of this URL with the short
    timeouts, that skips the server while it is in an outage."""
    guarded = GuardedRedis.from_url(url, **connection_options(url, **options))
    guarded.outage = outage_of(url)
    return guarded


def pool(url: str, **options) -> redis.ConnectionPool:
    """A connection pool of this URL with the same settings, for a library
    that makes its own client over it (the rate limiter's) and keeps the
    outage record itself (``outage_of``)."""
    return redis.ConnectionPool.from_url(url, **connection_options(url, **options))


def command(*parts: bytes) -> bytes:
    """One command in Redis's wire protocol, for ``open_connection``."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def tls_context(url: str) -> ssl.SSLContext | None:
    """For ``rediss://``, TLS that verifies the server's certificate and
    name; None otherwise."""
    return ssl.create_default_context() if urlsplit(url).scheme == "rediss" else None


async def open_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain asyncio connection of this URL, for the live subscriber,
    which speaks the protocol itself (pages/live/subscriber.py says why):
    the short timeout to connect and to be let in, TLS as above, AUTH when
    the URL has credentials. Replies have no timeout, as a subscription
    waits for messages; pub/sub needs no database number. Not guarded: it
    runs in no request, and keeps its own back-off while the server is
    away."""
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379, ssl=tls_context(url)),
        settings.REDIS_SOCKET_TIMEOUT,
    )
    if parts.password:
        credentials = [unquote(parts.username or "default").encode(), unquote(parts.password).encode()]
        writer.write(command(b"AUTH", *credentials))
        try:
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), settings.REDIS_SOCKET_TIMEOUT)
        except BaseException:
            writer.close()
            raise
        if not answer.startswith(b"+OK"):
            writer.close()
            raise ConnectionError("Redis refused the credentials")
    return reader, writer


def client_over(connection_pool: redis.ConnectionPool, *, client_class=redis.Redis) -> redis.Redis:
    """A plain client over a pool someone else made and configured (kombu's,
    from CELERY_BROKER_TRANSPORT_OPTIONS and CELERY_BROKER_USE_SSL, with
    kombu's client class): its callers keep the outage record themselves
    (notifications.tasks), as kombu turns redis-py's errors into its own."""
    return client_class(connection_pool=connection_pool)


_shared: tuple[str, GuardedRedis] | None = None
_shared_lock = threading.Lock()


def shared_client() -> GuardedRedis | None:
    """The process's one shared client of REDIS_URL (the page cache's and
    the live publisher's), or None without REDIS_URL, and None while the
    server is in an outage: callers then work as without Redis rather than
    each waiting for its own timeout."""
    global _shared
    url = settings.REDIS_URL
    if not url:
        return None
    shared = _shared
    if shared is None or shared[0] != url:
        with _shared_lock:
            if _shared is None or _shared[0] != url:
                connections = WaitingPool.from_url(
                    url,
                    **connection_options(
                        url,
                        health_check_interval=30,
                        max_connections=SHARED_MAX_CONNECTIONS,
                        timeout=settings.REDIS_SOCKET_TIMEOUT,
                    ),
                )
                shared_client = GuardedRedis(connection_pool=connections)
                shared_client.outage = outage_of(url)
                _shared = (url, shared_client)
            shared = _shared
    return None if shared[1].outage.active else shared[1]


def forget_shared_client() -> None:
    """The next shared_client() makes a new one (tests)."""
    global _shared
    _shared = None


class _SharedClientCache(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        shared = shared_client()
        if shared is None:
            raise Skipped("Redis failed moments ago")
        return shared


class SharedRedisCache(RedisCache):
    """Django's cache (``CACHES``) on the shared client. Stock RedisCache
    makes a pool per cache object, which under ASGI is one per request; this
    one is the shared client's, so no further client is made. Its LOCATION
    is REDIS_URL."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _SharedClientCache
