"""Live updates for open tracking pages, over server-sent events.

One hub per server process. With REDIS_URL it holds one Redis pattern
subscription and fans each message out to the mailboxes of the streams open
for that token, whatever process made the change; without it,
publishers in this process hand messages to the hub's loop directly.

A message says only that a page changed ("changed") or that its journey is
over ("final"); the page then fetches its own fragments, in its own language,
through the page cache. After "final" the stream ends and the page stops
listening.

The stream is served by ``sse_app``, a bare ASGI app that asgi.py routes
/t/<token>/events/ to: going through Django's handler would keep a thread
per open stream for its sync signal handlers (a prototype measured 53 KB
per stream that way and 29 KB without, and a steadier p99). ``events`` is
the same stream as a Django view, for reverse() and for servers that don't
route.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import re
import ssl
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import hiredis
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, connections
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone

from shipments import signals
from shipments.bulk import column, quote
from shipments.links import ENDED_AT, is_expired
from shipments.models import Route, Shipment, Stop
from shipments.statuses import STOP_DONE, TERMINAL, Status

from . import cache as page_cache

log = logging.getLogger(__name__)

CHANGED, FINAL = "changed", "final"
KEEP_ALIVE = object()
ENCODED = {
    CHANGED: b"event: changed\ndata: changed\n\n",
    FINAL: b"event: final\ndata: final\n\n",
    KEEP_ALIVE: b": keep-alive\n\n",
}
HEARTBEAT_SECONDS = 20
RECONNECT_MS = 3000
# Pub/sub channels are shared by all Redis databases, so the database number
# keeps one deployment's (or test run's) messages from another's.
CHANNEL_PREFIX = "tp:live:"
STREAM_PATH = re.compile(r"^/t/([A-Za-z0-9_-]{16,64})/events/$")
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    # Tells nginx-style proxies not to buffer the stream.
    (b"x-accel-buffering", b"no"),
]


def channel_prefix() -> str:
    db = redis.connection.parse_url(settings.REDIS_URL).get("db", 0) if settings.REDIS_URL else 0
    return f"{CHANNEL_PREFIX}{db}:"


def subscriber_name() -> str:
    return f"tracking-live-{os.getpid()}"


class Mailbox:
    """One stream's undelivered messages: lighter than an asyncio.Queue, and
    a message already waiting is not queued twice (each only asks the page
    to look again)."""

    __slots__ = ("pending", "waiter")

    def __init__(self) -> None:
        self.pending: list = []
        self.waiter: asyncio.Future | None = None

    def put(self, payload) -> None:
        if payload in self.pending:
            return
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

    def register(self, token: str) -> Mailbox:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            # A new event loop (a restarted server, a test): nothing of the
            # old one can be awaited from here.
            self.loop, self.streams, self._listener, self._heartbeat = loop, {}, None, None
            self.listening = asyncio.Event()
        queue = Mailbox()
        self.streams.setdefault(token, set()).add(queue)
        if settings.REDIS_URL and (self._listener is None or self._listener.done()):
            self._listener = loop.create_task(self._listen())
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = loop.create_task(self._beat())
        return queue

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
        for queue in self.streams.get(token, ()):
            queue.put(payload)

    def deliver_threadsafe(self, token: str, payload: str) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.deliver, token, payload)

    async def _listen(self) -> None:
        """Hold the process's one pattern subscription and fan messages out.

        It reads the connection with hiredis directly: a burst of thousands
        of messages is parsed from each read in C, where redis-py's PubSub
        costs an await and a parse per message (bench/live.py)."""
        prefix = channel_prefix().encode()
        delay = 0.5
        lost = False
        while True:
            writer = None
            try:
                reader, writer = await _open_redis(settings.REDIS_URL)
                # Named, so that an operator (or a test) can tell it apart.
                writer.write(_command(b"CLIENT", b"SETNAME", subscriber_name().encode()))
                writer.write(_command(b"PSUBSCRIBE", prefix + b"*"))
                await writer.drain()
                parser = hiredis.Reader()
                while True:
                    data = await reader.read(1 << 16)
                    if not data:
                        raise ConnectionError("Redis closed the connection")
                    parser.feed(data)
                    while (reply := parser.gets()) is not False:
                        if isinstance(reply, hiredis.ReplyError):
                            raise ConnectionError(str(reply))
                        if not isinstance(reply, list):
                            continue  # CLIENT SETNAME's OK
                        if reply[0] == b"pmessage":
                            self.deliver(reply[2][len(prefix) :].decode(), reply[3].decode())
                        elif reply[0] == b"psubscribe":
                            if lost:
                                # Whatever was published while the
                                # subscription was down reached nobody: every
                                # open page looks again.
                                for token in list(self.streams):
                                    self.deliver(token, CHANGED)
                            lost = False
                            self.listening.set()
                            delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                lost = True
                self.listening.clear()
                log.warning("Live updates: lost the Redis subscription; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                if writer is not None:
                    writer.close()

    async def _beat(self) -> None:
        """Every stream's keep-alive, from one timer rather than one each."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for queues in list(self.streams.values()):
                for queue in queues:
                    if queue.empty():
                        queue.put(KEEP_ALIVE)


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


async def _open_redis(url: str):
    """A plain connection for the subscription (pub/sub needs no database
    number), with AUTH when the URL has credentials and TLS for rediss://."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(
        parts.hostname or "127.0.0.1",
        parts.port or 6379,
        ssl=ssl.create_default_context() if parts.scheme == "rediss" else None,
    )
    if parts.password:
        credentials = [unquote(parts.username or "default").encode(), unquote(parts.password).encode()]
        writer.write(_command(b"AUTH", *credentials))
        await writer.drain()
        answer = await reader.readline()
        if not answer.startswith(b"+OK"):
            writer.close()
            raise ConnectionError("Redis refused the credentials")
    return reader, writer


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


def _route_dates() -> list[dt.date]:
    # Routes are dated in the driver's local day; a day either side of UTC's
    # covers every time zone.
    today = timezone.now().date()
    return [today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)]


def pages_changed(changes: list[signals.ShipmentChange]) -> dict[str, str]:
    """The pages a change of these shipments shows on: their own, and those
    of the parcels still on the van behind them on today's route ("N stops
    away"). At most two queries, however many shipments changed together,
    and none for what the writer already told."""
    told = [change for change in changes if change.token and change.status]
    statuses = [(change.token, change.old_status, change.status) for change in told]
    untold = [change.shipment_id for change in changes if not (change.token and change.status)]
    if untold:
        rows = Shipment.objects.filter(pk__in=untold).values_list("public_token", "status")
        # Unknown before: assume the stop's state may have changed.
        statuses += [(token, "", status) for token, status in rows]
    messages = {token: FINAL if status in TERMINAL else CHANGED for token, _old, status in statuses}
    # The parcels behind count the stops ahead still to be done, so their
    # pages change only when this parcel's stop becomes done or not done
    # (delivered, missed, back on the van after a miss).
    stops_moved = [
        change.shipment_id for change in told if (change.old_status in STOP_DONE) != (change.status in STOP_DONE)
    ]
    stops_moved += untold
    if not stops_moved:
        return messages
    for mate in _tokens_on_routes_of(stops_moved):
        messages.setdefault(mate, CHANGED)
    return messages


@functools.cache
def _route_mates_sql() -> str:
    """Written out rather than built by the ORM per call: compiling the
    four-way join cost a millisecond of CPU, on the path of every event
    that moves a stop."""
    stop, route, shipment = (quote(model._meta.db_table) for model in (Stop, Route, Shipment))
    return (
        f"SELECT DISTINCT mate.{column(Shipment, 'public_token')} FROM {stop} own"  # noqa: S608 - names from the models only
        f" JOIN {route} r ON r.{column(Route, 'id')} = own.{column(Stop, 'route')}"
        f" JOIN {stop} other ON other.{column(Stop, 'route')} = r.{column(Route, 'id')}"
        f" JOIN {shipment} mate ON mate.{column(Shipment, 'id')} = other.{column(Stop, 'shipment')}"
        f" WHERE own.{column(Stop, 'shipment')} IN ({{shipments}}) AND r.{column(Route, 'date')} IN (%s, %s, %s)"
        f" AND mate.{column(Shipment, 'status')} = %s"
    )


def _tokens_on_routes_of(shipment_ids: list[int]) -> list[str]:
    """The page tokens of the parcels still out for delivery on the routes
    (of the days that may be today somewhere) that these shipments are on."""
    dates = [connection.ops.adapt_datefield_value(day) for day in _route_dates()]
    sql = _route_mates_sql().format(shipments=", ".join(["%s"] * len(shipment_ids)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*shipment_ids, *dates, Status.OUT_FOR_DELIVERY.value])
        return [token for (token,) in cursor.fetchall()]


def pages_showing_driver(driver_id: int) -> dict[str, str]:
    tokens = Stop.objects.filter(
        route__driver_id=driver_id, route__date__in=_route_dates(), shipment__status=Status.OUT_FOR_DELIVERY
    ).values_list("shipment__public_token", flat=True)
    return dict.fromkeys(tokens, CHANGED)


def _refresh(messages: dict[str, str]) -> None:
    publish(messages, invalidate=True)


def on_shipments_changed(sender, changes: list[signals.ShipmentChange], **kwargs) -> None:
    # Runs after the writer's commit: a failure here must not fail the write.
    # A page missed here is at most PAGE_TTL_SECONDS stale, and an open page
    # also polls when its stream breaks.
    try:
        _refresh(pages_changed(changes))
    except Exception:
        log.exception("Live updates: could not announce a change of %d shipments", len(changes))


def on_driver_moved(sender, driver_id: int, **kwargs) -> None:
    try:
        _refresh(pages_showing_driver(driver_id))
    except Exception:
        log.exception("Live updates: could not announce a move of driver %s", driver_id)


def _stream_state(token: str) -> str | None:
    """None for no such page, FINAL for one whose journey is over."""
    try:
        shipment = Shipment.objects.filter(public_token=token).only("status", *ENDED_AT).first()
        if shipment is None or is_expired(shipment):
            return None
        return FINAL if shipment.is_terminal else CHANGED
    finally:
        # This runs outside any request, so nothing else hands the
        # connection back to the pool.
        connections.close_all()


async def stream(token: str, first: str) -> AsyncIterator[bytes]:
    """The event stream of one page. The queue is registered inside the
    generator and removed in ``finally``, which also runs when the client
    goes away and the generator is cancelled."""
    if first == FINAL:
        yield ENCODED[FINAL]
        return
    queue = hub.register(token)
    try:
        yield f"retry: {RECONNECT_MS}\n: open\n\n".encode()
        while True:
            payload = await queue.get()
            yield ENCODED.get(payload) or f"event: {payload}\ndata: {payload}\n\n".encode()
            if payload == FINAL:
                return
    finally:
        hub.unregister(token, queue)


async def events(request, token: str):
    first = await sync_to_async(_stream_state, thread_sensitive=False)(token)
    if first is None:
        raise Http404
    response = StreamingHttpResponse(stream(token, first), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


async def sse_app(scope, receive, send) -> None:
    """The stream as a bare ASGI app (see the module's docstring)."""
    match = STREAM_PATH.match(scope["path"])
    if scope["method"] not in ("GET", "HEAD") or match is None:
        await _plain(send, 405 if match else 404, b"Not found" if match is None else b"Method not allowed")
        return
    token = match.group(1)
    first = await sync_to_async(_stream_state, thread_sensitive=False)(token)
    if first is None:
        await _plain(send, 404, b"Not found")
        return

    task = asyncio.current_task()
    gone = False

    async def watch_disconnect() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch_disconnect())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        async for chunk in stream(token, first):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
    finally:
        watcher.cancel()


async def _plain(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})
