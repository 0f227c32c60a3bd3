"""Which pages a change concerns (pages/live/fanout.py)."""

import datetime as dt
import json

import pytest
import time_machine
from asgiref.sync import sync_to_async

from pages.live import fanout
from pages.live.hub import CHANGED, FINAL
from shipments import services, signals
from shipments.models import Driver, Route, Stop
from shipments.routes import days_that_may_be_today
from shipments.statuses import Status
from tests.conftest import T0, event

from .helpers import changes_of, next_event, open_stream, route_of, run

pytestmark = pytest.mark.django_db(transaction=True)


# An hour after its events, so that no alert (stuck) opens and is announced too.
@time_machine.travel(T0 + dt.timedelta(hours=1), tick=False)
def test_a_delivery_tells_the_parcels_behind_it_on_the_route(make_shipment, django_capture_on_commit_callbacks):
    ahead, behind, not_on_van = make_shipment(), make_shipment(), make_shipment()
    for s in (ahead, behind):
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery"))
    route_of(ahead, behind, not_on_van)

    # Told nothing, it reads the shipment and assumes the stop may have moved.
    messages = fanout.pages_changed([signals.ShipmentChange(ahead.pk, 1)])
    assert messages == {ahead.public_token: CHANGED, behind.public_token: CHANGED}

    with django_capture_on_commit_callbacks(execute=True):
        changes = changes_of(lambda: services.record_event(shipment_id=ahead.pk, event=event("delivered", 5)))
    assert (changes[0].token, changes[0].old_status, changes[0].status) == (
        ahead.public_token,
        "out_for_delivery",
        "delivered",
    )
    assert fanout.pages_changed(changes) == {ahead.public_token: FINAL, behind.public_token: CHANGED}


def test_a_delivery_tells_only_the_parcels_on_its_own_routes_of_the_days_around_today(make_shipment):
    delivered, behind, other_van, last_week, behind_twice = (make_shipment() for _ in range(5))
    for s in (behind, other_van, last_week, behind_twice):
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery"))
    route_of(delivered, behind, behind_twice)
    other = Driver.objects.create(brand=other_van.brand, ref="drv-other")
    Stop.objects.create(
        route=Route.objects.create(driver=other, date=days_that_may_be_today()[1]), shipment=other_van, sequence=1
    )
    old = Route.objects.create(driver=other, date=days_that_may_be_today()[0] - dt.timedelta(days=6))
    Stop.objects.create(route=old, shipment=delivered, sequence=1)
    Stop.objects.create(route=old, shipment=last_week, sequence=2)
    # The same parcel on yesterday's route of this van as well: told once.
    yesterday = Route.objects.create(driver=Driver.objects.get(ref="drv-live"), date=days_that_may_be_today()[0])
    Stop.objects.create(route=yesterday, shipment=delivered, sequence=1)
    Stop.objects.create(route=yesterday, shipment=behind_twice, sequence=2)

    change = signals.ShipmentChange(
        delivered.pk, 2, None, token=delivered.public_token, old_status="out_for_delivery", status="delivered"
    )
    assert fanout.pages_changed([change]) == {
        delivered.public_token: FINAL,
        behind.public_token: CHANGED,
        behind_twice.public_token: CHANGED,
    }
    assert sorted(fanout.tokens_on_routes_of([delivered.pk])) == sorted(
        [behind.public_token, behind_twice.public_token]
    )


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
            messages = fanout.pages_changed(changes)
        assert messages == {on_route_in_transit.public_token: CHANGED}


def test_back_on_the_van_after_a_miss_tells_the_parcels_behind(make_shipment, django_capture_on_commit_callbacks):
    missed, behind = make_shipment(), make_shipment()
    for s, status in ((missed, "failed_attempt"), (behind, "out_for_delivery")):
        services.record_event(shipment_id=s.pk, event=event(status))
    route_of(missed, behind)
    with django_capture_on_commit_callbacks(execute=True):
        changes = changes_of(lambda: services.record_event(shipment_id=missed.pk, event=event("out_for_delivery", 5)))
    assert behind.public_token in fanout.pages_changed(changes)


def test_a_driver_move_tells_the_pages_that_show_the_driver(make_shipment):
    on_van, delivered = make_shipment(), make_shipment()
    services.record_event(shipment_id=on_van.pk, event=event("out_for_delivery"))
    services.record_event(shipment_id=delivered.pk, event=event("delivered"))
    driver = route_of(delivered, on_van)
    # A driver with no position yet: nothing to show.
    Driver.objects.filter(pk=driver.pk).update(last_lat=None, last_lng=None, last_position_at=None)
    assert fanout.pages_showing_driver(driver.pk) == {}

    from shipments import drivers

    seen_at = event("in_transit", 1).occurred_at

    async def scenario():
        stream, _ = await open_stream(on_van.public_token)
        await sync_to_async(drivers.record_locations)(
            brand=on_van.brand,
            driver_ref=driver.ref,
            pings=[drivers.Ping(lat=51.5123456, lng=-0.1, recorded_at=seen_at)],
        )
        message = await next_event(stream)
        await stream.aclose()
        return message

    message = run(scenario())
    # The position itself, rounded as the page shows it; only to the parcel
    # still on the van.
    assert message.startswith(b"event: position\ndata: ")
    data = json.loads(message.split(b"data: ", 1)[1])
    assert data == {"lat": 51.51235, "lng": -0.1, "at": seen_at.isoformat()}
    assert set(fanout.pages_showing_driver(driver.pk)) == {on_van.public_token}


def test_the_written_out_route_query_finds_what_the_orm_finds(make_shipment):
    """tokens_on_routes_of is written-out SQL; the ORM's query of the same
    rule returns the same tokens."""
    mine, behind, done, elsewhere, old_route = (make_shipment() for _ in range(5))
    for s in (behind, elsewhere, old_route):
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery"))
    services.record_event(shipment_id=done.pk, event=event("delivered"))
    route_of(mine, behind, done)
    other = Driver.objects.create(brand=elsewhere.brand, ref="drv-elsewhere")
    today = Route.objects.create(driver=other, date=days_that_may_be_today()[2])
    Stop.objects.create(route=today, shipment=elsewhere, sequence=1)
    old = Route.objects.create(driver=other, date=days_that_may_be_today()[0] - dt.timedelta(days=1))
    Stop.objects.create(route=old, shipment=mine, sequence=1)
    Stop.objects.create(route=old, shipment=old_route, sequence=2)

    ids = [mine.pk, elsewhere.pk]
    orm = (
        Stop.objects.filter(
            route__stops__shipment_id__in=ids,
            route__date__in=days_that_may_be_today(),
            shipment__status=Status.OUT_FOR_DELIVERY,
        )
        .values_list("shipment__public_token", flat=True)
        .distinct()
    )
    assert (
        sorted(fanout.tokens_on_routes_of(ids)) == sorted(orm) == sorted([behind.public_token, elsewhere.public_token])
    )
