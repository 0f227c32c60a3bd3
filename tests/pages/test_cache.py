"""The page cache (pages/cache.py): needs Redis (REDIS_URL)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from pages import cache as page_cache
from shipments import drivers, services
from tests.conftest import T0, event
from tests.pages.live.helpers import route_of
from tracking_portal import redis as redis_factory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="the page cache needs Redis (set REDIS_URL)"),
]


def without_visitor_tokens(response) -> str:
    return re.sub(r'nonce="[^"]+"', "", response.content.decode())


def get(client, shipment, **headers):
    return client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en", **headers)


def test_a_warm_page_needs_no_query(client, shipment, django_assert_num_queries):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    first = get(client, shipment)
    with django_assert_num_queries(0):
        warm = get(client, shipment)
    assert warm.status_code == 200
    assert without_visitor_tokens(warm) == without_visitor_tokens(first)


def test_a_recorded_event_invalidates_the_page_and_its_fragments(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert "In transit" in get(client, shipment).content.decode()
    assert "In transit" in get(client, shipment, HTTP_HX_REQUEST="true").content.decode()
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 10))
    assert "Out for delivery</h1>" in get(client, shipment).content.decode()
    assert "Out for delivery</h1>" in get(client, shipment, HTTP_HX_REQUEST="true").content.decode()


def test_languages_are_kept_apart(client, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert "In transit" in get(client, shipment).content.decode()
    german = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="de")
    assert "Unterwegs" in german.content.decode() and german["Content-Language"] == "de"
    assert "In transit" in get(client, shipment).content.decode()


def test_nothing_of_one_visitor_is_stored(shipment):
    first, second = Client(), Client()
    pages = [get(c, shipment).content.decode() for c in (first, second)]
    nonces = [re.search(r'nonce="([^"]+)"', html).group(1) for html in pages]
    assert nonces[0] != nonces[1]
    client = page_cache.shared_redis()
    stored = b"".join(client.get(key) for key in client.scan_iter(f"tp:page:{shipment.public_token}:*"))
    assert stored
    for value in nonces:
        assert value.encode() not in stored
    assert page_cache.NONCE_PLACEHOLDER.encode() in stored
    assert b"csrfmiddlewaretoken" not in stored


def test_a_warm_page_sets_no_csrf_cookie_and_holds_no_token(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    get(Client(), shipment)  # renders and stores the page
    for client in (Client(), Client(enforce_csrf_checks=True)):
        warm = get(client, shipment)
        assert warm.status_code == 200
        assert settings.CSRF_COOKIE_NAME not in warm.cookies
        assert "csrfmiddlewaretoken" not in warm.content.decode()
        assert "Set-Cookie" not in warm.headers
    # The forms are a request away, uncached, with their token.
    forms = Client().get(shipment.get_absolute_url() + "actions/", HTTP_HX_REQUEST="true")
    assert "csrfmiddlewaretoken" in forms.content.decode() and settings.CSRF_COOKIE_NAME in forms.cookies


def test_a_page_rendered_before_a_change_is_never_served_after_it(client, shipment):
    """A render that read the database before a change and stored its page
    after the change's invalidation must not win."""
    variant = "page:~en"
    before = page_cache.lookup(shipment.public_token, variant)
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))  # bumps the epoch
    page_cache.store(shipment.public_token, variant, before, html="stale page", language="en", expires_at=0)
    assert page_cache.lookup(shipment.public_token, variant).html is None
    assert "stale page" not in get(client, shipment).content.decode()


def test_with_redis_unreachable_pages_are_rendered_and_changes_still_recorded(client, shipment, settings, monkeypatch):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(redis_factory, "_shared", None)
    redis_factory.forget_outages()
    response = get(client, shipment)
    assert response.status_code == 200 and "Order received" in response.content.decode()
    assert redis_factory.outage_of(settings.REDIS_URL).active  # the next ones don't try for a while
    recorded = services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert recorded.created
    assert "In transit</h1>" in get(client, shipment).content.decode()


def ping(driver, lat, lng, at):
    drivers.record_locations(
        brand=driver.brand, driver_ref=driver.ref, pings=[drivers.Ping(lat=lat, lng=lng, recorded_at=at)]
    )


def test_a_ping_keeps_the_stored_page_and_a_new_visitor_sees_the_position_within_its_promise(client, shipment):
    """The driver's position is streamed to open pages; a ping makes no
    stored page stale, and a page that shows the driver is kept at most
    POSITION_MAX_AGE_SECONDS, so a new visitor sees a position that old at
    most."""
    start = T0 + timedelta(hours=1)
    with time_machine.travel(start, tick=False) as clock:
        services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery"))
        driver = route_of(shipment)
        ping(driver, 51.50001, -0.10001, start - timedelta(seconds=5))
        assert 'data-driver-lat="51.50001"' in get(client, shipment).content.decode()
        redis = page_cache.shared_redis()
        epoch = redis.get(f"tp:epoch:{shipment.public_token}")

        clock.shift(timedelta(seconds=5))
        ping(driver, 51.60002, -0.10002, start)
        assert redis.get(f"tp:epoch:{shipment.public_token}") == epoch
        assert page_cache.lookup(shipment.public_token, "page:~en").html is not None
        # Within the promise the stored page is served as it is.
        assert 'data-driver-lat="51.50001"' in get(client, shipment).content.decode()

        clock.shift(timedelta(seconds=page_cache.POSITION_MAX_AGE_SECONDS))
        fresh = get(client, shipment).content.decode()
        assert 'data-driver-lat="51.60002"' in fresh
        assert 'data-time="09:00"' in fresh  # the ping's time, in the recipient's zone
