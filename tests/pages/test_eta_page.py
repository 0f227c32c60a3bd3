"""The tracking page's computed ETA (pages/promises.py, shipments/eta.py):
"Arriving between" for a parcel on a van, when it was updated, a note when
the driver's position is old, the brand's promise otherwise; its cached
copy kept while the shown minutes stay and replaced when they change."""

from datetime import timedelta

import pytest
import time_machine

from shipments import drivers, eta

from .eta_van import drive, hhmm, page

# Transactional, so that writes commit and the page cache (with REDIS_URL)
# is invalidated the way it is in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("frozen")]


def test_a_parcel_on_a_van_shows_the_computed_window_and_when_it_was_updated(client, brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    shipment.refresh_from_db()
    html = page(client, shipment)
    assert "Arriving between" in html
    assert f">{hhmm(shipment.computed_window_start)}</time> and <time" in html
    assert f">{hhmm(shipment.computed_window_end)}</time>" in html
    assert f"Updated {hhmm(frozen)}" in html
    assert "when-stale" not in html
    # The promise is not shown over the better informed estimate.
    assert "Delivery window" not in html


def test_an_old_position_is_noted(client, brand, van, frozen, settings):
    settings.ETA_STALE_POSITION_SECONDS = 120
    route, shipment = van
    drive(brand, route, frozen)
    with time_machine.travel(frozen + timedelta(minutes=3), tick=False):
        html = page(client, shipment)
    assert "Arriving between" in html
    assert "when-stale" in html


def test_off_the_van_the_brands_promise_shows(client, make_shipment, frozen):
    shipment = make_shipment(
        promised_window_start=frozen + timedelta(hours=5), promised_window_end=frozen + timedelta(hours=7)
    )
    html = page(client, shipment)
    assert "Delivery window" in html and "Arriving between" not in html
    assert hhmm(frozen + timedelta(hours=5)) in html


def test_the_page_moves_with_the_shown_minutes_only(client, brand, van, frozen, django_assert_num_queries):
    from pages import cache as page_cache

    route, shipment = van
    drive(brand, route, frozen)
    page(client, shipment)
    # The same position recomputed a moment later: the same minutes.
    eta.recompute_route(route_id=route.pk, now=frozen + timedelta(seconds=1))
    if page_cache.shared_redis() is not None:
        with django_assert_num_queries(0):
            page(client, shipment)
    # Two kilometres on: the new window shows.
    later = frozen + timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        drive(brand, route, later, metres=2000)
        shipment.refresh_from_db()
        html = page(client, shipment)
    assert f">{hhmm(shipment.computed_window_end)}</time>" in html
    assert f"Updated {hhmm(later)}" in html


def test_a_parcel_taken_off_the_route_no_longer_shows_the_vans_window(client, brand, van, frozen):
    route, shipment = van
    drive(brand, route, frozen)
    assert "Arriving between" in page(client, shipment)
    drivers.set_route(brand=brand, driver_ref="van-1", date=frozen.date(), tracking_numbers=[])
    html = page(client, shipment)
    assert "Arriving between" not in html
    assert "Delivery window" in html and hhmm(frozen + timedelta(hours=5)) in html


def test_a_van_that_stopped_pinging_shows_a_wider_window_then_the_promise(client, brand, van, frozen, settings):
    from shipments.tasks import refresh_silent_etas_task

    settings.ETA_STALE_POSITION_SECONDS = 300
    settings.ETA_WITHDRAW_POSITION_SECONDS = 1800
    route, shipment = van
    drive(brand, route, frozen)
    shipment.refresh_from_db()
    later = frozen + timedelta(minutes=12)
    with time_machine.travel(later, tick=False):
        refresh_silent_etas_task()
        shipment.refresh_from_db()
        html = page(client, shipment)
    assert "Arriving between" in html and "when-stale" in html
    assert f">{hhmm(shipment.computed_window_end)}</time>" in html
    with time_machine.travel(frozen + timedelta(minutes=31), tick=False):
        refresh_silent_etas_task()
        html = page(client, shipment)
    assert "Arriving between" not in html
    assert "Delivery window" in html
