"""The stream of one page (pages/live/stream.py): the SSE generator, the
bare ASGI app and the Django view."""

import asyncio
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import OperationalError

from pages.live import stream as sse
from pages.live.hub import FINAL, hub
from shipments import services
from tests.conftest import event

from .helpers import FakeClient, current_epoch, first_chunks, next_event, open_stream, run, scope

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_recorded_event_reaches_the_open_stream(shipment):
    async def scenario():
        stream, opening = await open_stream(shipment.public_token)
        assert opening.startswith(b"retry: ")
        assert hub.open_streams == 1
        await sync_to_async(services.record_event)(shipment_id=shipment.pk, event=event("in_transit"))
        assert await next_event(stream) == b"event: changed\ndata: changed\n\n"
        await stream.aclose()
        # Closing (as when the client goes away) unregisters the stream.
        assert hub.open_streams == 0

    run(scenario())


def test_delivery_ends_the_stream_with_final(shipment):
    async def scenario():
        stream, _ = await open_stream(shipment.public_token)
        await sync_to_async(services.record_event)(shipment_id=shipment.pk, event=event("delivered"))
        assert await next_event(stream) == b"event: final\ndata: final\n\n"
        with pytest.raises(StopAsyncIteration):
            await next_event(stream)
        assert hub.open_streams == 0

    run(scenario())


def test_a_stream_for_a_finished_journey_says_final_at_once(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("cancelled"))

    async def scenario():
        first, queue = await sse.opened_state(shipment.public_token, None)
        assert first == FINAL
        chunks = [chunk async for chunk in sse.stream(shipment.public_token, first, queue)]
        assert chunks == [b"event: final\ndata: final\n\n"]
        assert hub.open_streams == 0

    run(scenario())


def test_the_asgi_stream_streams_and_cleans_up_when_the_client_leaves(shipment):
    async def scenario():
        client = FakeClient()
        app = asyncio.ensure_future(
            sse.sse_app(scope(f"/t/{shipment.public_token}/events/"), client.receive, client.send)
        )
        for _ in range(100):
            if hub.open_streams:
                break
            await asyncio.sleep(0.02)
        if settings.REDIS_URL:
            await asyncio.wait_for(hub.listening.wait(), 5)
        start = client.sent[0]
        assert start["status"] == 200
        assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
        assert (b"cache-control", b"no-store") in start["headers"]

        await sync_to_async(services.record_event)(shipment_id=shipment.pk, event=event("in_transit"))
        for _ in range(100):
            if b"event: changed" in client.body:
                break
            await asyncio.sleep(0.02)
        assert b"event: changed" in client.body

        client.gone.set()
        await asyncio.wait_for(app, 2)
        assert hub.open_streams == 0

    run(scenario())


def test_the_asgi_stream_refuses_unknown_tokens_and_other_methods(shipment):
    async def scenario():
        unknown = FakeClient()
        await sse.sse_app(scope("/t/" + "z" * 43 + "/events/"), unknown.receive, unknown.send)
        assert unknown.sent[0]["status"] == 404
        post = FakeClient()
        await sse.sse_app(scope(f"/t/{shipment.public_token}/events/", "POST"), post.receive, post.send)
        assert post.sent[0]["status"] == 405
        assert hub.open_streams == 0

    run(scenario())


def test_the_asgi_router_sends_only_streams_to_the_bare_app():
    from tracking_portal.asgi import application

    assert sse.STREAM_PATH.match("/t/" + "a" * 43 + "/events/")
    assert not sse.STREAM_PATH.match("/t/" + "a" * 43 + "/")
    assert not sse.STREAM_PATH.match("/t/" + "a" * 43 + "/events/x")
    assert callable(application)


def test_head_gets_the_headers_and_no_stream(shipment):
    async def scenario():
        client = FakeClient()
        await sse.sse_app(scope(f"/t/{shipment.public_token}/events/", "HEAD"), client.receive, client.send)
        assert client.sent[0]["status"] == 200
        assert client.body == b"" and client.sent[-1]["more_body"] is False
        assert hub.open_streams == 0

    run(scenario())


def test_the_django_view_streams_the_same(shipment, async_client):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))

    async def scenario():
        response = await async_client.get(f"/t/{shipment.public_token}/events/")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/event-stream")
        chunks = [chunk async for chunk in response.streaming_content]
        assert b"".join(chunks) == b"event: final\ndata: final\n\n"
        missing = await async_client.get("/t/" + "q" * 43 + "/events/")
        assert missing.status_code == 404

    run(scenario())


def test_the_asgi_stream_answers_503_when_the_database_is_away(shipment):
    error = OperationalError("couldn't get a connection after 10.00 sec")

    async def scenario():
        client = FakeClient()
        with mock.patch.object(sse, "stream_state", side_effect=error):
            await sse.sse_app(scope(f"/t/{shipment.public_token}/events/"), client.receive, client.send)
        return client

    client = run(scenario())
    start = client.sent[0]
    assert start["status"] == 503
    assert (b"retry-after", b"5") in start["headers"]
    assert client.body == b"Tracking is briefly unavailable"


OPENING = "retry: 3000\n: open\n\n"


@pytest.mark.skipif(not settings.REDIS_URL, reason="a page's epoch is kept in Redis (set REDIS_URL)")
def test_a_page_that_is_current_loads_nothing_more_when_its_stream_opens(shipment):
    """The page names the epoch it was rendered at; while that is still the
    page's, the stream opens without "changed", so a new visitor costs one
    render, not two."""
    since = current_epoch(shipment.public_token)
    chunks = run(first_chunks(shipment.public_token, f"since={since}".encode(), 2))
    assert chunks[0] == OPENING.encode()
    assert sse.ENCODED[sse.CHANGED] not in chunks
    assert hub.open_streams == 0


@pytest.mark.parametrize("query", [b"", b"since=", b"since=not-an-epoch"], ids=["no epoch", "empty", "unknown"])
def test_a_page_that_may_be_behind_hears_changed_first(shipment, query):
    chunks = run(first_chunks(shipment.public_token, query, 2))
    assert chunks[:2] == [OPENING.encode(), sse.ENCODED[sse.CHANGED]]
    assert hub.open_streams == 0


@pytest.mark.skipif(not settings.REDIS_URL, reason="a page's epoch is kept in Redis (set REDIS_URL)")
def test_a_change_between_the_render_and_the_stream_is_heard_at_opening(shipment):
    since = current_epoch(shipment.public_token)
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert current_epoch(shipment.public_token) != since
    chunks = run(first_chunks(shipment.public_token, f"since={since}".encode(), 2))
    assert chunks[:2] == [OPENING.encode(), sse.ENCODED[sse.CHANGED]]
