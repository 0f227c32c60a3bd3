"""Redis clients that give up quickly when Redis is in trouble.

The rule: a request waits on a Redis server for one short timeout
(REDIS_SOCKET_TIMEOUT, to connect and for each reply) at most once per
back-off. A command that could not reach the server (refused, timed out,
dropped) marks it down in this process for REDIS_OUTAGE_BACKOFF_SECONDS;
until then every guarded client of that server fails at once with
``Skipped``, a redis ConnectionError, without touching the network, and
each caller takes the way it already has for Redis being away: a page is
rendered without the cache, a change is recorded without being announced
(the outbox sweep and the pages' own polling catch up), a task is left in
the outbox for the sweep.

Redis is one server for all of a process's clients (page cache, live
push, the broker), so the outage is kept per server, not per client: what
one client learnt, the others need not wait to learn again.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.client import Pipeline

# What says the server is away, rather than that a command was wrong.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class Skipped(redis.ConnectionError):
    """Redis was not tried: it failed moments ago."""


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


def client(url: str, **options) -> GuardedRedis:
    """A redis-py client (thread-safe, pooled) of this URL with short
    timeouts, that skips the server while it is in an outage."""
    options.setdefault("socket_timeout", settings.REDIS_SOCKET_TIMEOUT)
    options.setdefault("socket_connect_timeout", settings.REDIS_SOCKET_TIMEOUT)
    guarded = GuardedRedis.from_url(url, **options)
    guarded.outage = outage_of(url)
    return guarded
