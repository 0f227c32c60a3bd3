"""Live updates (pages/live.py): the hub, the stream and what announces changes.

These run the stream in an event loop of their own; with REDIS_URL set the
messages go through Redis pub/sub, otherwise through the in-process hub.
"""

import asyncio
import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from pages import cache as page_cache
from pages import live
from shipments import services, signals
from shipments.models import Driver, Route, Stop
from shipments.statuses import Status
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def run(coroutine):
    async def and_close():
        try:
            return await asyncio.wait_for(coroutine, 10)
        finally:
            # The thread that ran the ORM calls outlives this loop: give its
            # connection back, or the test database can't be dropped.
            await sync_to_async(connections.close_all)()

    return asyncio.run(and_close())


async def open_stream(token: str):
    """A stream that is registered with the hub and (with Redis) subscribed."""
    first = await sync_to_async(live._stream_state, thread_sensitive=False)(token)
    stream = live.stream(token, first)
    opening = await anext(stream)
    if settings.REDIS_URL:
        await asyncio.wait_for(live.hub.listening.wait(), 5)
    return stream, opening


async def next_event(stream, timeout=3.0) -> bytes:
    return await asyncio.wait_for(anext(stream), timeout)


def test_a_recorded_event_reaches_the_open_stream(shipment):
    async def scenario():
        stream, opening = await open_stream(shipment.public_token)
        assert opening.startswith(b"retry: ")
        assert live.hub.open_streams == 1
        await sync_to_async(services.record_event)(shipment_id=shipment.pk, event=event("in_transit"))
        assert await next_event(stream) == b"event: changed\ndata: changed\n\n"
        await stream.aclose()
        # Closing (as when the client goes away) unregisters the stream.
        assert live.hub.open_streams == 0

    run(scenario())


def test_delivery_ends_the_stream_with_final(shipment):
    async def scenario():
        stream, _ = await open_stream(shipment.public_token)
        await sync_to_async(services.record_event)(shipment_id=shipment.pk, event=event("delivered"))
        assert await next_event(stream) == b"event: final\ndata: final\n\n"
        with pytest.raises(StopAsyncIteration):
            await next_event(stream)
        assert live.hub.open_streams == 0

    run(scenario())


def test_a_stream_for_a_finished_journey_says_final_at_once(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("cancelled"))

    async def scenario():
        first = await sync_to_async(live._stream_state, thread_sensitive=False)(shipment.public_token)
        assert first == live.FINAL
        chunks = [chunk async for chunk in live.stream(shipment.public_token, first)]
        assert chunks == [b"event: final\ndata: final\n\n"]
        assert live.hub.open_streams == 0

    run(scenario())


def test_only_the_changed_shipments_streams_hear_of_it(make_shipment):
    mine, other = make_shipment(), make_shipment()

    async def scenario():
        mine_stream, _ = await open_stream(mine.public_token)
        other_stream, _ = await open_stream(other.public_token)
        await sync_to_async(services.record_event)(shipment_id=mine.pk, event=event("in_transit"))
        assert b"changed" in await next_event(mine_stream)
        with pytest.raises(TimeoutError):
            await next_event(other_stream, timeout=0.3)
        await mine_stream.aclose()
        await other_stream.aclose()

    run(scenario())


def route_of(*shipments):
    driver = Driver.objects.create(brand=shipments[0].brand, ref="drv-live")
    route = Route.objects.create(driver=driver, date=live._route_dates()[1])
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


def test_a_delivery_tells_the_parcels_behind_it_on_the_route(make_shipment, django_capture_on_commit_callbacks):
    ahead, behind, not_on_van = make_shipment(), make_shipment(), make_shipment()
    for s in (ahead, behind):
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery"))
    route_of(ahead, behind, not_on_van)

    # Told nothing, it reads the shipment and assumes the stop may have moved.
    messages = live.pages_changed([signals.ShipmentChange(ahead.pk, 1)])
    assert messages == {ahead.public_token: live.CHANGED, behind.public_token: live.CHANGED}

    with django_capture_on_commit_callbacks(execute=True):
        changes = changes_of(lambda: services.record_event(shipment_id=ahead.pk, event=event("delivered", 5)))
    assert (changes[0].token, changes[0].old_status, changes[0].status) == (
        ahead.public_token,
        "out_for_delivery",
        "delivered",
    )
    assert live.pages_changed(changes) == {ahead.public_token: live.FINAL, behind.public_token: live.CHANGED}


def test_a_delivery_tells_only_the_parcels_on_its_own_routes_of_the_days_around_today(make_shipment):
    delivered, behind, other_van, last_week, behind_twice = (make_shipment() for _ in range(5))
    for s in (behind, other_van, last_week, behind_twice):
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery"))
    route_of(delivered, behind, behind_twice)
    other = Driver.objects.create(brand=other_van.brand, ref="drv-other")
    Stop.objects.create(
        route=Route.objects.create(driver=other, date=live._route_dates()[1]), shipment=other_van, sequence=1
    )
    old = Route.objects.create(driver=other, date=live._route_dates()[0] - dt.timedelta(days=6))
    Stop.objects.create(route=old, shipment=delivered, sequence=1)
    Stop.objects.create(route=old, shipment=last_week, sequence=2)
    # The same parcel on yesterday's route of this van as well: told once.
    yesterday = Route.objects.create(driver=Driver.objects.get(ref="drv-live"), date=live._route_dates()[0])
    Stop.objects.create(route=yesterday, shipment=delivered, sequence=1)
    Stop.objects.create(route=yesterday, shipment=behind_twice, sequence=2)

    change = signals.ShipmentChange(
        delivered.pk, 2, None, token=delivered.public_token, old_status="out_for_delivery", status="delivered"
    )
    assert live.pages_changed([change]) == {
        delivered.public_token: live.FINAL,
        behind.public_token: live.CHANGED,
        behind_twice.public_token: live.CHANGED,
    }
    assert sorted(live._tokens_on_routes_of([delivered.pk])) == sorted([behind.public_token, behind_twice.public_token])


def test_a_change_that_leaves_the_stop_as_it_was_tells_only_its_own_page(
    make_shipment, django_assert_num_queries, django_capture_on_commit_callbacks
):
    on_route_in_transit, behind = make_shipment(), make_shipment()
    services.record_event(shipment_id=behind.pk, event=event("out_for_delivery"))
    services.record_event(shipment_id=on_route_in_transit.pk, event=event("in_transit"))
    route_of(on_route_in_transit, behind)
    for status, minutes in (("out_for_delivery", 2), ("exception", 3)):
        with django_capture_on_commit_callbacks(execute=True):
            changes = changes_of(
                lambda status=status, minutes=minutes: services.record_event(
                    shipment_id=on_route_in_transit.pk, event=event(status, minutes)
                )
            )
        with django_assert_num_queries(0):
            messages = live.pages_changed(changes)
        assert messages == {on_route_in_transit.public_token: live.CHANGED}


def test_back_on_the_van_after_a_miss_tells_the_parcels_behind(make_shipment, django_capture_on_commit_callbacks):
    missed, behind = make_shipment(), make_shipment()
    for s, status in ((missed, "failed_attempt"), (behind, "out_for_delivery")):
        services.record_event(shipment_id=s.pk, event=event(status))
    route_of(missed, behind)
    with django_capture_on_commit_callbacks(execute=True):
        changes = changes_of(lambda: services.record_event(shipment_id=missed.pk, event=event("out_for_delivery", 5)))
    assert behind.public_token in live.pages_changed(changes)


def test_a_driver_move_tells_the_pages_that_show_the_driver(make_shipment):
    on_van, delivered = make_shipment(), make_shipment()
    services.record_event(shipment_id=on_van.pk, event=event("out_for_delivery"))
    services.record_event(shipment_id=delivered.pk, event=event("delivered"))
    driver = route_of(delivered, on_van)
    assert live.pages_showing_driver(driver.pk) == {on_van.public_token: live.CHANGED}

    from shipments import drivers

    async def scenario():
        stream, _ = await open_stream(on_van.public_token)
        await sync_to_async(drivers.record_locations)(
            brand=on_van.brand,
            driver_ref=driver.ref,
            pings=[drivers.Ping(lat=51.5, lng=-0.1, recorded_at=event("in_transit", 1).occurred_at)],
        )
        assert b"changed" in await next_event(stream)
        await stream.aclose()

    run(scenario())


def test_a_failing_announcement_never_fails_the_write(shipment, monkeypatch, caplog):
    # The edge of the world here is Redis (or the hub's loop) going away.
    def broken(messages):
        raise ConnectionError("bus is down")

    monkeypatch.setattr(live, "publish", broken)
    recorded = services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert recorded.created
    shipment.refresh_from_db()
    assert shipment.status == Status.IN_TRANSIT
    assert "could not announce" in caplog.text


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


def scope(path, method="GET"):
    return {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}


def test_the_asgi_stream_streams_and_cleans_up_when_the_client_leaves(shipment):
    async def scenario():
        client = FakeClient()
        app = asyncio.ensure_future(
            live.sse_app(scope(f"/t/{shipment.public_token}/events/"), client.receive, client.send)
        )
        for _ in range(100):
            if live.hub.open_streams:
                break
            await asyncio.sleep(0.02)
        if settings.REDIS_URL:
            await asyncio.wait_for(live.hub.listening.wait(), 5)
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
        assert live.hub.open_streams == 0

    run(scenario())


def test_the_asgi_stream_refuses_unknown_tokens_and_other_methods(shipment):
    async def scenario():
        unknown = FakeClient()
        await live.sse_app(scope("/t/" + "z" * 43 + "/events/"), unknown.receive, unknown.send)
        assert unknown.sent[0]["status"] == 404
        post = FakeClient()
        await live.sse_app(scope(f"/t/{shipment.public_token}/events/", "POST"), post.receive, post.send)
        assert post.sent[0]["status"] == 405
        assert live.hub.open_streams == 0

    run(scenario())


def test_the_asgi_router_sends_only_streams_to_the_bare_app():
    from tracking_portal.asgi import application

    assert live.STREAM_PATH.match("/t/" + "a" * 43 + "/events/")
    assert not live.STREAM_PATH.match("/t/" + "a" * 43 + "/")
    assert not live.STREAM_PATH.match("/t/" + "a" * 43 + "/events/x")
    assert callable(application)


def test_head_gets_the_headers_and_no_stream(shipment):
    async def scenario():
        client = FakeClient()
        await live.sse_app(scope(f"/t/{shipment.public_token}/events/", "HEAD"), client.receive, client.send)
        assert client.sent[0]["status"] == 200
        assert client.body == b"" and client.sent[-1]["more_body"] is False
        assert live.hub.open_streams == 0

    run(scenario())


@pytest.mark.skipif(not settings.REDIS_URL, reason="the subscription is Redis's (set REDIS_URL)")
def test_open_pages_look_again_after_the_subscription_comes_back(shipment):
    """Messages published while the hub's subscription was down reached
    nobody; when it is back, every open stream is told to look again."""

    async def scenario():
        stream, _ = await open_stream(shipment.public_token)
        redis = page_cache.shared_redis()
        # Drop this process's hub subscription from Redis's side.
        mine = [c for c in redis.client_list(_type="pubsub") if c.get("name") == live.subscriber_name()]
        assert len(mine) == 1
        redis.client_kill_filter(_id=mine[0]["id"])
        assert await next_event(stream, timeout=5) == b"event: changed\ndata: changed\n\n"
        await stream.aclose()

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
