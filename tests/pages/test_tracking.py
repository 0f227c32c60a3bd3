"""The public tracking page and its fragments (pages/tracking.py)."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from pages import cache as page_cache
from shipments import services
from shipments.labels import STATUS_LABELS
from shipments.models import Driver, Route, Stop
from shipments.statuses import SHOWS_DRIVER, Status
from tests.conftest import event

# Transactional, so that writes commit and the page cache (with REDIS_URL)
# is invalidated the way it is in production.
pytestmark = pytest.mark.django_db(transaction=True)

FRAGMENTS = ["status", "map", "proof", "actions", "timeline"]


def page(client, shipment, **headers):
    return client.get(shipment.get_absolute_url(), **headers)


def fragment(client, shipment, target=None, **headers):
    extra = {"HTTP_HX_REQUEST": "true", **headers}
    if target:
        extra["HTTP_HX_TARGET"] = target
    return client.get(shipment.get_absolute_url(), **extra)


def put_on_route(shipment, *others, driver_position=(51.5, -0.12)):
    """A route today for a driver at driver_position: others first, then shipment."""
    driver = Driver.objects.create(
        brand=shipment.brand,
        ref=f"drv-{shipment.pk}",
        last_lat=driver_position[0],
        last_lng=driver_position[1],
        last_position_at=timezone.now(),
    )
    route = Route.objects.create(driver=driver, date=timezone.localdate())
    for sequence, stop in enumerate([*others, shipment], start=1):
        Stop.objects.create(route=route, shipment=stop, sequence=sequence)
    return driver


def text_of(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("status", list(Status))
def test_page_and_every_fragment_render_for_every_status(client, shipment, status):
    if status != Status.PENDING:
        services.record_event(shipment_id=shipment.pk, event=event(status, 0, description="Scan at the depot"))
    put_on_route(shipment)

    response = page(client, shipment, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    html = text_of(response)
    assert str(STATUS_LABELS[status]) in html
    assert 'id="status"' in html and 'aria-live="polite"' in html
    if status != Status.PENDING:
        assert "Scan at the depot" in html

    updates = fragment(client, shipment, HTTP_ACCEPT_LANGUAGE="en")
    assert updates.status_code == 200
    body = text_of(updates)
    assert "<html" not in body
    for name in FRAGMENTS:
        assert re.search(rf'id="{name}"[^>]*hx-swap-oob=', body) or re.search(
            rf'id="{"map-data" if name == "map" else name}"[^>]*hx-swap-oob=', body
        ), name
    for name in FRAGMENTS:
        single = fragment(client, shipment, target=name)
        assert single.status_code == 200, name
        assert "<html" not in text_of(single)
        assert "hx-swap-oob" not in text_of(single)


def test_page_shows_the_map_and_driver_only_while_out_for_delivery(client, make_shipment):
    on_van, in_transit = make_shipment(), make_shipment()
    services.record_event(shipment_id=on_van.pk, event=event("out_for_delivery"))
    services.record_event(shipment_id=in_transit.pk, event=event("in_transit"))
    put_on_route(on_van, driver_position=(51.51234, -0.12345))
    put_on_route(in_transit, driver_position=(51.6, -0.2))
    assert Status.OUT_FOR_DELIVERY in SHOWS_DRIVER

    shown = text_of(page(client, on_van))
    assert 'data-show="1"' in shown and 'data-driver-lat="51.51234"' in shown
    hidden = text_of(page(client, in_transit))
    assert 'data-show="0"' in hidden and "data-driver-lat" not in hidden and "51.6" not in hidden

    services.record_event(shipment_id=on_van.pk, event=event("delivered", 30))
    after = text_of(page(client, on_van))
    assert "data-driver-lat" not in after and "51.51234" not in after


def test_stops_away_counts_the_open_stops_before_this_one(client, make_shipment):
    first, second, third, mine = (make_shipment() for _ in range(4))
    for s in (first, second, third, mine):
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery"))
    put_on_route(mine, first, second, third)
    services.record_event(shipment_id=first.pk, event=event("delivered", 10))
    Stop.objects.filter(shipment=second).update(completed_at=timezone.now())

    assert "The driver is 1 stop away." in text_of(page(client, mine, HTTP_ACCEPT_LANGUAGE="en"))
    services.record_event(shipment_id=third.pk, event=event("failed_attempt", 20))
    assert "You are the driver's next stop." in text_of(page(client, mine, HTTP_ACCEPT_LANGUAGE="en"))


def test_query_count_does_not_grow_with_the_number_of_events(client, make_shipment, django_assert_max_num_queries):
    few, many = make_shipment(), make_shipment()
    for s, count in ((few, 2), (many, 60)):
        services.record_events(
            shipment_id=s.pk,
            events=[event("in_transit", minute, description=f"Hub {minute}") for minute in range(count)],
        )
        services.record_event(shipment_id=s.pk, event=event("out_for_delivery", 500))
        put_on_route(s, make_shipment())

    # PostgreSQL reads the shipment, its timeline, its stops and its open
    # alerts in one statement (pages.reads.page_rows).
    most = 1 if connection.vendor == "postgresql" else 4
    for s in (few, many):
        with django_assert_max_num_queries(most):
            assert page(client, s).status_code == 200
        with django_assert_max_num_queries(most):
            assert fragment(client, s).status_code == 200


def test_no_street_postcode_phone_email_or_surname_on_any_public_response(client, shipment):
    services.record_events(shipment_id=shipment.pk, events=[event("in_transit", 0), event("out_for_delivery", 10)])
    put_on_route(shipment)
    responses = [page(client, shipment), fragment(client, shipment)]
    responses += [fragment(client, shipment, target=name) for name in FRAGMENTS]
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 20))
    services.attach_proof_of_delivery(shipment_id=shipment.pk, received_by="Neighbour at 3")
    responses += [page(client, shipment), fragment(client, shipment)]

    for response in responses:
        html = text_of(response)
        assert response.status_code == 200
        assert "Ada" in html or "hx-swap-oob" in html or 'id="' in html
        for secret in ("Example Street", "SW1A", "2AA", "+447700900123", "7700900123", "ada@example.com", "Lovelace"):
            assert secret not in html, secret
        # The destination only to about 100 m.
        assert "51.5034" not in html and "-0.1276" not in html
    assert "Ada" in text_of(responses[0]) and "London" in text_of(responses[0])


def test_privacy_headers_and_a_working_csp_nonce(client, shipment):
    response = page(client, shipment)
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    html = text_of(response)
    scripts = re.findall(r"<script [^>]*>", html)
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)
    assert f'<style nonce="{nonce}">' in html
    assert page_cache.NONCE_PLACEHOLDER not in html
    # Each response gets its own nonce, even when the page comes from the cache.
    again = page(client, shipment)
    assert re.search(r"'nonce-([^']+)'", again["Content-Security-Policy"]).group(1) != nonce


def test_carrier_text_is_escaped(client, shipment):
    services.record_event(
        shipment_id=shipment.pk, event=event("in_transit", description='<script>alert("x")</script><b>bold</b>')
    )
    html = text_of(page(client, shipment))
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_brand_colours_reach_the_page_only_as_hex_colours(client, brand, make_shipment):
    brand.primary_colour = "#123abc"
    brand.accent_colour = "}*{a:b}"
    brand.save()
    html = text_of(page(client, make_shipment()))
    assert "--brand: #123abc;" in html
    assert "a:b" not in html and "--accent: #0f766e;" in html


def test_window_and_timeline_are_shown_in_the_recipients_time_zone(client, make_shipment):
    shipment = make_shipment(
        recipient_timezone="America/New_York",
        promised_window_start=datetime(2026, 11, 26, 14, 0, tzinfo=UTC),
        promised_window_end=datetime(2026, 11, 26, 18, 0, tzinfo=UTC),
    )
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0))  # 08:00 UTC
    html = text_of(page(client, shipment, HTTP_ACCEPT_LANGUAGE="en"))
    assert "Thu 26 Nov, 09:00" in html and "13:00" in html  # the window, New York time
    assert "Thu 26 Nov, 03:00" in html  # the scan
    assert "Times shown in Eastern time" in html and "America/New_York" not in html


def test_brand_time_zone_when_the_recipient_has_none(client, brand, make_shipment):
    brand.default_timezone = "Europe/Berlin"
    brand.save()
    shipment = make_shipment(promised_window_start=datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    assert "Thu 26 Nov, 09:00" in text_of(page(client, shipment, HTTP_ACCEPT_LANGUAGE="en"))


def test_proof_of_delivery_after_delivery(client, shipment, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 0))
    assert 'id="proof" class="card proof-card" hidden' in text_of(page(client, shipment))
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    services.attach_proof_of_delivery(
        shipment_id=shipment.pk,
        received_by="J. Smith",
        photo=ContentFile(b"\x89PNG fake", name="door.png"),
        signature=ContentFile(b"\x89PNG fake", name="sig.png"),
    )
    html = text_of(page(client, shipment, HTTP_ACCEPT_LANGUAGE="en"))
    assert "Proof of delivery" in html and "J. Smith" in html
    # Served through the tracking link (which they stop with), never /media/.
    proof_url = shipment.get_absolute_url() + "proof/"
    assert proof_url + "photo/" in html and proof_url + "signature/" in html
    assert "/media/" not in html
    # The journey is over: no live stream and no map; htmx alone, for the
    # forms on the page (the rating, a problem).
    assert "sse-connect" not in html and "hx-sse-2.js" not in html and "leaflet.js" not in html


def test_unknown_token_is_404(client):
    assert client.get("/t/" + "x" * 43 + "/").status_code == 404


def test_link_expires_thirty_days_after_delivery(client, shipment):
    now = timezone.now()
    delivered = event("delivered", 0)
    services.record_event(
        shipment_id=shipment.pk,
        event=services.NewEvent(
            status=delivered.status, occurred_at=now - timedelta(days=29, hours=23), external_id="dlv"
        ),
    )
    assert page(client, shipment).status_code == 200
    shipment.refresh_from_db()
    import time_machine

    with time_machine.travel(now + timedelta(days=1), tick=False):
        response = page(client, shipment, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 410
        html = text_of(response)
        assert "This tracking link has expired" in html and "help@acme.example" in html
        assert "Ada" not in html and shipment.tracking_number not in html
        assert response["Cache-Control"] == "no-store"
        assert fragment(client, shipment).status_code == 410


def test_language_follows_choice_then_browser_then_recipient_then_brand(client, brand, make_shipment):
    brand.default_language = "de"
    brand.save()
    shipment = make_shipment()
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))

    assert page(client, shipment)["Content-Language"] == "de"  # the brand's default
    assert page(client, shipment, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")["Content-Language"] == "de"
    spanish = page(client, shipment, HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9,en;q=0.5")
    assert spanish["Content-Language"] == "es" and "En tránsito" in text_of(spanish)
    german = page(client, shipment)
    assert "Unterwegs" in text_of(german)

    recipient_spanish = make_shipment(recipient_language="es")
    assert page(client, recipient_spanish)["Content-Language"] == "es"

    chosen = client.get(shipment.get_absolute_url() + "?lang=en", HTTP_ACCEPT_LANGUAGE="es")
    assert chosen["Content-Language"] == "en" and "In transit" in text_of(chosen)
    assert chosen.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    # The choice sticks, over what the browser says.
    assert page(client, shipment, HTTP_ACCEPT_LANGUAGE="es")["Content-Language"] == "en"


def test_the_page_speaks_the_recipients_language_as_their_messages_do(client, brand, make_shipment):
    # "en-GB" is English, on the page as in the messages (shipments.recipients).
    brand.default_language = "de"
    brand.save()
    british = make_shipment(recipient_language="en-GB")
    assert page(client, british)["Content-Language"] == "en"


def test_switcher_links_work_without_javascript(client, shipment):
    html = text_of(page(client, shipment, HTTP_ACCEPT_LANGUAGE="en"))
    for code in ("en", "es", "de"):
        assert f'href="{shipment.get_absolute_url()}?lang={code}"' in html


def test_every_hx_get_has_a_real_href(client, shipment):
    html = text_of(page(client, shipment))
    for tag in re.findall(r"<a [^>]*hx-get=[^>]*>", html):
        href = re.search(r'href="([^"]+)"', tag).group(1)
        assert href == re.search(r'hx-get="([^"]+)"', tag).group(1)
        assert client.get(href).status_code == 200


def test_tokens_are_masked_in_uvicorns_access_log(shipment):
    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", shipment.get_absolute_url() + "events/", "1.1", 200),
        None,
    )
    assert logger.handlers and not logger.propagate
    lines = []
    for handler in logger.handlers:
        if handler.filter(record):
            lines.append(handler.format(record))
    assert lines and all(shipment.public_token not in line for line in lines)
    assert any(shipment.public_token[:6] + "…" in line for line in lines)


def test_tokens_are_masked_in_djangos_request_log(shipment, settings):
    # What Django logs for a 404 reaches only handlers that mask it, in
    # development too (Django's own console handler speaks only in DEBUG).
    settings.DEBUG = True
    logger = logging.getLogger("django.request")
    record = logger.makeRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", (shipment.get_absolute_url(),), None
    )
    handlers, current = [], logger
    while current is not None:
        handlers += current.handlers
        current = current.parent if current.propagate else None
    lines = [handler.format(record) for handler in handlers if handler.filter(record)]
    assert lines and all(shipment.public_token not in line for line in lines)
