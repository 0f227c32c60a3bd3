"""The process's hub: the mailboxes of the streams open in this process,
and how a change reaches them.

With REDIS_URL the hub holds one Redis pattern subscription
(subscriber.py) and fans each message out to the mailboxes of the streams
open for that token, whatever process made the change; without it,
publishers in this process hand messages to the hub's loop directly.

A message says that a page changed (CHANGED) or that its journey is over
(FINAL): a tracking page's stream then sends it the changed sections, other
pages fetch their own fragments, in their own language, through the page
cache (stream.py); or it carries the driver's new position (POSITION),
which the page shows without fetching anything; or it says that only the
expected times moved (TIMES), and a tracking page's stream sends the page
its new status card (stream.py), so that the ETA's recomputes, a few a
minute on every page on the van, cost no page load.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from django.conf import settings

from .. import cache as page_cache
from ..local_copy import LocalCopy
from .subscriber import channel_prefix, hold_subscription

CHANGED, FINAL = "changed", "final"
TIMES = "times"
# "position {json}": the driver's position, rounded as the page shows it.
POSITION = "position"


def position_message(lat: float, lng: float, seen_at: datetime) -> str:
    data = {"lat": round(lat, 5), "lng": round(lng, 5), "at": seen_at.isoformat()}
    return f"{POSITION} {json.dumps(data, separators=(',', ':'))}"


def is_position(payload) -> bool:
    return isinstance(payload, str) and payload.startswith(POSITION + " ")


KEEP_ALIVE = object()
HEARTBEAT_SECONDS = 20


class Mailbox:
    """One stream's undelivered messages: lighter than an asyncio.Queue, and
    a message already waiting is not queued twice (each only asks the page
    to look again)."""

    __slots__ = ("pending", "waiter")

    def __init__(self) -> None:
        self.pending: list = []
        self.waiter: asyncio.Future | None = None

    def put(self, payload) -> None:
        if payload in self.pending or (payload == TIMES and CHANGED in self.pending):
            return
        if payload == CHANGED and TIMES in self.pending:
            # The page loads everything again, its times included.
            self.pending.remove(TIMES)
        if is_position(payload):
            # Only the newest position is worth sending.
            self.pending = [waiting for waiting in self.pending if not is_position(waiting)]
        self.pending.append(payload)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def empty(self) -> bool:
        return not self.pending

    async def get(self):
        while not self.pending:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.pending.pop(0)


class Hub:
    def __init__(self) -> None:
        self.streams: dict[str, set[Mailbox]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None
        self.listening = asyncio.Event()
        # Hot pages, good only while the subscription holds (local_copy.py).
        self.pages = LocalCopy()

    def _on_this_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            # A new event loop (a restarted server, a test): nothing of the
            # old one can be awaited from here.
            self.loop, self.streams, self._listener, self._heartbeat = loop, {}, None, None
            self.listening = asyncio.Event()
            self.pages.clear()
        return loop

    def subscribe(self) -> asyncio.AbstractEventLoop:
        """Hold the Redis subscription in this loop (with REDIS_URL)."""
        loop = self._on_this_loop()
        if settings.REDIS_URL and (self._listener is None or self._listener.done()):
            self._listener = loop.create_task(hold_subscription(self))
        return loop

    def register(self, token: str) -> Mailbox:
        loop = self.subscribe()
        queue = Mailbox()
        self.streams.setdefault(token, set()).add(queue)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = loop.create_task(self._beat())
        return queue

    def subscribed(self) -> None:
        self.pages.clear()
        self.listening.set()

    def unsubscribed(self) -> None:
        """The subscription is lost: a message may be missed from now on."""
        self.listening.clear()
        self.pages.clear()

    def unregister(self, token: str, queue: Mailbox) -> None:
        queues = self.streams.get(token)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.streams[token]

    @property
    def open_streams(self) -> int:
        return sum(len(queues) for queues in self.streams.values())

    def deliver(self, token: str, payload: str) -> None:
        # A position leaves the stored page as it is (receivers.on_driver_moved).
        if not is_position(payload):
            self.pages.drop(token)
        for queue in self.streams.get(token, ()):
            queue.put(payload)

    def deliver_threadsafe(self, token: str, payload: str) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.deliver, token, payload)

    def look_again(self) -> None:
        """Every open page looks again (messages may have been missed)."""
        for token in list(self.streams):
            self.deliver(token, CHANGED)

    async def _beat(self) -> None:
        """Every stream's keep-alive, from one timer rather than one each."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for queues in list(self.streams.values()):
                for queue in queues:
                    if queue.empty():
                        queue.put(KEEP_ALIVE)


hub = Hub()


def publish(messages: dict[str, str], *, invalidate: bool = False) -> None:
    """Tell every open page of these tokens that it changed (or ended); with
    ``invalidate``, first make their stored pages stale, in the same round
    trip."""
    if not messages:
        return
    client = page_cache.shared_redis()
    if client is None:
        for token, payload in messages.items():
            hub.deliver_threadsafe(token, payload)
        return
    prefix = channel_prefix()
    pipe = client.pipeline(transaction=False)
    if invalidate:
        page_cache.invalidate(messages, pipe)
    for token, payload in messages.items():
        pipe.publish(prefix + token, payload)
    pipe.execute()
