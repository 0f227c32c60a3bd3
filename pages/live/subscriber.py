"""The process's one Redis pattern subscription, which feeds the hub.

When Redis goes away it is tried again with a growing back-off, and when
the subscription is back every open page is told to look again: whatever
was published meanwhile reached nobody.

It speaks Redis's protocol itself over the factory's connection
(tracking_portal.redis.open_connection), read with hiredis directly, rather
than through redis.asyncio's PubSub: a burst of thousands of messages is
parsed from each read in C, where PubSub costs an await and a parse per
message, and bench/live.py (run old and new alternately, bench/RESULTS.md
"Live updates") showed redis.asyncio slower to deliver and dearer in the
server's CPU at every level, beyond the machine's noise.
"""

from __future__ import annotations

import asyncio
import logging
import os

import hiredis
import redis
from django.conf import settings

from tracking_portal import redis as redis_factory

log = logging.getLogger(__name__)

# Pub/sub channels are shared by all Redis databases, so the database number
# keeps one deployment's (or test run's) messages from another's.
CHANNEL_PREFIX = "tp:live:"
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 10.0
# A subscription quiet for this long is sent a PING, and is taken as lost
# when nothing comes back within as long again: a connection that died
# without a word (a failover, a dropped route) must not leave the hub's
# copy of pages (local_copy.py) trusted, nor open pages deaf, for long.
QUIET_SECONDS = 2.0


def channel_prefix() -> str:
    db = redis.connection.parse_url(settings.REDIS_URL).get("db", 0) if settings.REDIS_URL else 0
    return f"{CHANNEL_PREFIX}{db}:"


def subscriber_name() -> str:
    # Named, so that an operator (or a test) can tell it apart.
    return f"tracking-live-{os.getpid()}"


async def hold_subscription(hub) -> None:
    """Subscribe to every page's channel and hand each message to
    ``hub.deliver``; tell the hub when the subscription is made
    (``hub.subscribed``) and when it is lost (``hub.unsubscribed``)."""
    prefix = channel_prefix().encode()
    delay = FIRST_RETRY_SECONDS
    lost = False
    while True:
        writer = None
        try:
            reader, writer = await redis_factory.open_connection(settings.REDIS_URL)
            writer.write(redis_factory.command(b"CLIENT", b"SETNAME", subscriber_name().encode()))
            writer.write(redis_factory.command(b"PSUBSCRIBE", prefix + b"*"))
            await writer.drain()
            parser = hiredis.Reader()
            pinged = False
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(1 << 16), QUIET_SECONDS)
                except TimeoutError:
                    if pinged:
                        raise ConnectionError("Redis did not answer a PING on the subscription") from None
                    writer.write(redis_factory.command(b"PING"))
                    await writer.drain()
                    pinged = True
                    continue
                pinged = False
                if not data:
                    raise ConnectionError("Redis closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    if isinstance(reply, hiredis.ReplyError):
                        raise ConnectionError(str(reply))
                    if not isinstance(reply, list):
                        continue  # CLIENT SETNAME's OK (a PING's pong is a list, and ignored)
                    if reply[0] == b"pmessage":
                        hub.deliver(reply[2][len(prefix) :].decode(), reply[3].decode())
                    elif reply[0] == b"psubscribe":
                        hub.subscribed()
                        if lost:
                            hub.look_again()
                        lost = False
                        delay = FIRST_RETRY_SECONDS
        except asyncio.CancelledError:
            hub.unsubscribed()
            raise
        except Exception:
            lost = True
            hub.unsubscribed()
            log.warning("Live updates: lost the Redis subscription; retrying in %.1fs", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY_SECONDS)
        finally:
            if writer is not None:
                writer.close()
