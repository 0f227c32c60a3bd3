"""The process's one Redis pattern subscription, which feeds the hub.

Held with redis.asyncio (redis-py's own async client, its PubSub). When
Redis goes away it is tried again with a growing back-off, and when the
subscription is back every open page is told to look again: whatever was
published meanwhile reached nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import redis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tracking_portal import redis as redis_factory

log = logging.getLogger(__name__)

# Pub/sub channels are shared by all Redis databases, so the database number
# keeps one deployment's (or test run's) messages from another's.
CHANNEL_PREFIX = "tp:live:"
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 10.0


def channel_prefix() -> str:
    db = redis.connection.parse_url(settings.REDIS_URL).get("db", 0) if settings.REDIS_URL else 0
    return f"{CHANNEL_PREFIX}{db}:"


def subscriber_name() -> str:
    # Named, so that an operator (or a test) can tell it apart.
    return f"tracking-live-{os.getpid()}"


async def hold_subscription(hub) -> None:
    """Subscribe to every page's channel and hand each message to
    ``hub.deliver``; set ``hub.listening`` while subscribed."""
    prefix = channel_prefix()
    delay = FIRST_RETRY_SECONDS
    lost = False
    while True:
        # No retries inside the client: a lost connection comes back here,
        # where it is known to have been lost.
        client = redis_factory.async_client(
            settings.REDIS_URL, client_name=subscriber_name(), retry=Retry(NoBackoff(), 0)
        )
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe(prefix + "*")
            async for message in pubsub.listen():
                kind = message["type"]
                if kind == "pmessage":
                    hub.deliver(message["channel"][len(prefix) :].decode(), message["data"].decode())
                elif kind == "psubscribe":
                    if lost:
                        hub.look_again()
                    lost = False
                    hub.listening.set()
                    delay = FIRST_RETRY_SECONDS
            raise ConnectionError("the subscription ended")
        except asyncio.CancelledError:
            raise
        except Exception:
            lost = True
            hub.listening.clear()
            log.warning("Live updates: lost the Redis subscription; retrying in %.1fs", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
