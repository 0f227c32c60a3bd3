"""One tracking page's event stream: the SSE generator, the bare ASGI app
that serves it and the same stream as a Django view.

After FINAL the stream ends and the page stops listening.

A stream opened with ``card=<language>`` (the tracking page's) sends the
page what changed rather than asking it to load itself again: on a change,
the "updates" fragment the page would have loaded, through the page cache,
as a "page" event (htmx swaps its sections in, out of band); when only the
expected times moved (TIMES), the new status card alone, as a "status"
event, which the page's script puts in place. Either way the page loads
nothing, and a batch of changes costs no burst of page loads. Other streams
(the widget's frame, an order's page), and a page whose fragment carries a
visitor's forms (the delivered page), hear "changed" and load themselves.

The stream is served by ``sse_app``, a bare ASGI app that asgi.py routes
/t/<token>/events/ to: going through Django's handler would keep a thread
per open stream for its sync signal handlers, which costs memory per stream
and steadiness of the slowest deliveries (bench/live.py).
``events`` is the same stream as a Django view, for reverse() and for
servers that don't route.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.db import OperationalError, connections
from django.http import Http404, StreamingHttpResponse

from shipments.links import ENDED_AT, is_expired
from shipments.models import Shipment

from .. import cache as page_cache
from ..tracking import SUPPORTED_LANGUAGES, pushed_updates, status_card
from ..unavailable import RETRY_AFTER_SECONDS
from .hub import CHANGED, FINAL, KEEP_ALIVE, POSITION, TIMES, Mailbox, hub, is_position

log = logging.getLogger(__name__)

ENCODED = {
    CHANGED: b"event: changed\ndata: changed\n\n",
    FINAL: b"event: final\ndata: final\n\n",
    KEEP_ALIVE: b": keep-alive\n\n",
}
RECONNECT_MS = 3000
STREAM_PATH = re.compile(r"^/t/([A-Za-z0-9_-]{16,64})/events/$")
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    # Tells nginx-style proxies not to buffer the stream.
    (b"x-accel-buffering", b"no"),
]


def encode(payload) -> bytes:
    encoded = ENCODED.get(payload)
    if encoded is not None:
        return encoded
    if is_position(payload):
        return f"event: {POSITION}\ndata: {payload[len(POSITION) + 1 :]}\n\n".encode()
    return f"event: {payload}\ndata: {payload}\n\n".encode()


def encode_html(event: str, html: str) -> bytes:
    # Each line of the data is a "data:" line of its own (the browser joins
    # them with newlines); a bare CR would end a line too.
    lines = html.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    return (f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def encode_card(html: str) -> bytes:
    return encode_html("status", html)


def render(what, token: str, language: str) -> str | None:
    try:
        return what(token, language)
    except Exception:
        # The page can always load itself again instead.
        log.exception("Live updates: could not render what a page is sent")
        return None
    finally:
        # Outside any request: nothing else hands the connection back.
        connections.close_all()


async def _sent(what, event: str, token: str, card: str) -> bytes:
    """``what``'s fragment as ``event``, or "changed" when there is none."""
    html = await sync_to_async(render, thread_sensitive=False)(what, token, card) if card else None
    return encode_html(event, html) if html else ENCODED[CHANGED]


async def times_moved(token: str, card: str) -> bytes:
    """What a stream sends when only the page's expected times moved."""
    return await _sent(status_card, "status", token, card)


async def page_moved(token: str, card: str) -> bytes:
    """What a stream sends when its page changed."""
    return await _sent(pushed_updates, "page", token, card)


async def encoded(token: str, payload, card: str) -> bytes:
    if payload == TIMES:
        return await times_moved(token, card)
    if payload == CHANGED and card:
        return await page_moved(token, card)
    return encode(payload)


def stream_state(token: str, since: str | None = None) -> str | None:
    """None for no such page, FINAL for one whose journey is over; else
    CHANGED when the page may be behind (its epoch, ``since``, is no longer
    the page's, or cannot be checked), KEEP_ALIVE when it is current. Read
    after the stream is registered with the hub, so that a change after
    this reading is a message the stream receives."""
    try:
        shipment = Shipment.objects.filter(public_token=token).only("status", *ENDED_AT).first()
        if shipment is None or is_expired(shipment):
            return None
        if shipment.is_terminal:
            return FINAL
        return KEEP_ALIVE if page_cache.is_current(token, since) else CHANGED
    finally:
        # This runs outside any request, so nothing else hands the
        # connection back to the pool.
        connections.close_all()


def since_of(query_string: bytes) -> str | None:
    values = parse_qs(query_string.decode("latin-1")).get("since")
    return values[0] if values else None


def card_of(query_string: bytes) -> str:
    """The language a page takes its status card in, if it named one the
    portal speaks; else "" (the page loads itself again instead)."""
    values = parse_qs(query_string.decode("latin-1")).get("card")
    return values[0] if values and values[0] in SUPPORTED_LANGUAGES else ""


async def opened_state(token: str, since: str | None) -> tuple[str | None, Mailbox]:
    """Register the stream with the hub, then read what it opens with
    (stream_state). The caller owns the queue: ``stream`` unregisters it."""
    queue = hub.register(token)
    try:
        first = await sync_to_async(stream_state, thread_sensitive=False)(token, since)
    except BaseException:
        hub.unregister(token, queue)
        raise
    if first is None:
        hub.unregister(token, queue)
    return first, queue


async def stream(token: str, first: str, queue: Mailbox, card: str = "") -> AsyncIterator[bytes]:
    """The event stream of one page, from its registered queue, which is
    removed in ``finally``, also run when the client goes away and the
    generator is cancelled. A page that may be behind hears "changed"
    first."""
    try:
        if first == FINAL:
            yield ENCODED[FINAL]
            return
        yield f"retry: {RECONNECT_MS}\n: open\n\n".encode()
        if first == CHANGED:
            yield await encoded(token, CHANGED, card)
        while True:
            payload = await queue.get()
            yield await encoded(token, payload, card)
            if payload == FINAL:
                return
    finally:
        hub.unregister(token, queue)


async def events(request, token: str):
    first, queue = await opened_state(token, request.GET.get("since"))
    if first is None:
        raise Http404
    card = card_of(request.META.get("QUERY_STRING", "").encode("latin-1"))
    response = StreamingHttpResponse(stream(token, first, queue, card), content_type="text/event-stream; charset=utf-8")
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
    try:
        first, queue = await opened_state(token, since_of(scope.get("query_string", b"")))
    except OperationalError as exc:
        # The database away (the pool timed out): as the page says, try
        # again shortly; EventSource does, and the page polls meanwhile.
        log.warning("A live stream answered 503, database unavailable: %s", exc)
        retry = (b"retry-after", str(RETRY_AFTER_SECONDS).encode())
        await _plain(send, 503, b"Tracking is briefly unavailable", retry)
        return
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
        async for chunk in stream(token, first, queue, card_of(scope.get("query_string", b""))):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
    finally:
        watcher.cancel()
        # A HEAD, or a client gone before the stream began, never ran the
        # generator that unregisters it.
        hub.unregister(token, queue)


async def _plain(send, status: int, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
