"""Shared by the live-update tests: they run the stream in an event loop of
their own; with REDIS_URL set the messages go through Redis pub/sub,
otherwise through the in-process hub."""

import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from pages import cache as page_cache
from pages.live import stream as sse
from pages.live.hub import hub
from shipments import signals
from shipments.models import Driver, Route, Stop
from shipments.routes import days_that_may_be_today


def run(coroutine):
    async def and_close():
        try:
            return await asyncio.wait_for(coroutine, 10)
        finally:
            # The thread that ran the ORM calls outlives this loop: give its
            # connection back, or the test database can't be dropped.
            await sync_to_async(connections.close_all)()

    return asyncio.run(and_close())


def current_epoch(token: str) -> str:
    """The epoch a page rendered now would name (pages.cache.events_url)."""
    return page_cache.lookup(token, "page:~").epoch.decode()


async def open_stream(token: str):
    """A stream that is registered with the hub and (with Redis) subscribed,
    opened by a page that is current: the next event is what comes after.
    Without Redis no page can be known to be current, and the stream's
    opening "changed" is read here."""
    since = await sync_to_async(current_epoch)(token)
    first, queue = await sse.opened_state(token, since)
    stream = sse.stream(token, first, queue)
    opening = await anext(stream)
    if first == sse.CHANGED and not settings.REDIS_URL:
        assert await anext(stream) == sse.ENCODED[sse.CHANGED]
    if settings.REDIS_URL:
        await asyncio.wait_for(hub.listening.wait(), 5)
    return stream, opening


async def next_event(stream, timeout=3.0) -> bytes:
    return await asyncio.wait_for(anext(stream), timeout)


def route_of(*shipments):
    driver = Driver.objects.create(brand=shipments[0].brand, ref="drv-live")
    route = Route.objects.create(driver=driver, date=days_that_may_be_today()[1])
    for sequence, s in enumerate(shipments, start=1):
        Stop.objects.create(route=route, shipment=s, sequence=sequence)
    return driver


def changes_of(record):
    """Record an event and return the changes it announced."""
    seen = []
    receiver = lambda sender, changes, **kwargs: seen.extend(changes)  # noqa: E731
    signals.shipments_changed.connect(receiver, dispatch_uid="test-live-changes")
    try:
        record()
    finally:
        signals.shipments_changed.disconnect(dispatch_uid="test-live-changes")
    return seen


class FakeClient:
    """The client side of one ASGI HTTP request."""

    def __init__(self):
        self.sent = []
        self.gone = asyncio.Event()
        self.requested = False

    async def receive(self):
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


def scope(path, method="GET", query=b""):
    return {"type": "http", "method": method, "path": path, "headers": [], "query_string": query}


async def first_chunks(token: str, query: bytes, count: int, timeout=1.0) -> list[bytes]:
    """What the bare ASGI stream sends first, up to ``count`` chunks or
    ``timeout`` seconds, then the client goes away."""
    client = FakeClient()
    app = asyncio.ensure_future(sse.sse_app(scope(f"/t/{token}/events/", query=query), client.receive, client.send))
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline and len(client.sent) < count + 1:
        await asyncio.sleep(0.02)
    client.gone.set()
    await app
    return [message.get("body", b"") for message in client.sent[1:]]
