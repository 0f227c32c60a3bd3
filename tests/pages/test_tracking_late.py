"""The tracking page and the widget's frames tell the truth about time: a
late parcel shows "Running late", never a window that has passed; an open
missed scan shows that the portal is checking (pages/promises.py through
the pages)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from pages import cache as page_cache
from pages.tracking import cached_until
from shipments import alerts, services
from shipments.embedding import order_signature
from shipments.models import Driver
from tests.conftest import event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]

RUNNING_LATE = "Running late"
SECOND = timedelta(seconds=1)


def page(client, shipment, **headers):
    return client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en", **headers).content.decode()


def status_card(html: str) -> str:
    return re.search(r'<section id="status".*?</section>', html, re.S).group(0)


def frame(client, shipment):
    url = reverse("pages:embed_tracking", args=[shipment.public_token])
    return client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def iso(moment) -> str:
    return moment.astimezone(timezone.get_default_timezone()).isoformat()


@pytest.fixture
def on_its_way(make_shipment):
    """Out for delivery, promised a window from now to two hours from now."""

    def make(*, start=timedelta(0), end=timedelta(hours=2), eta=None, **fields):
        now = timezone.now()
        shipment = make_shipment(
            promised_window_start=now + start,
            promised_window_end=now + end,
            eta=now + eta if eta is not None else None,
            **fields,
        )
        services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery"))
        shipment.refresh_from_db()
        return shipment

    return make


def test_a_window_still_to_come_is_shown_in_the_normal_colour(client, on_its_way):
    shipment = on_its_way()
    card = status_card(page(client, shipment))
    assert "Delivery window" in card and f'datetime="{iso(shipment.promised_window_start)}"' in card
    assert RUNNING_LATE not in card and "tone-warning" not in card and "<del>" not in card


def test_just_before_the_window_ends_on_time_just_after_running_late(client, on_its_way):
    shipment = on_its_way()
    end = shipment.promised_window_end
    with time_machine.travel(end - SECOND, tick=False):
        assert RUNNING_LATE not in status_card(page(client, shipment))
    with time_machine.travel(end + SECOND, tick=False):
        card = status_card(page(client, shipment))
    assert RUNNING_LATE in card and "tone-warning" in card
    # The window is shown only as what was promised, struck through.
    assert "Delivery window" not in card and "Expected around" not in card
    assert re.search(
        rf'Originally promised <del><time datetime="{re.escape(iso(shipment.promised_window_start))}"', card
    )
    assert "We don't have a new time yet" in card


def test_a_page_cached_before_the_window_ended_is_not_served_after_it(client, on_its_way):
    shipment = on_its_way(end=timedelta(minutes=5))
    # Kept no longer than the window holds, with or without Redis (and, on
    # the van, no longer than a driver's position is kept).
    with time_machine.travel(timezone.now(), tick=False):
        position_bound = timezone.now().timestamp() + page_cache.POSITION_MAX_AGE_SECONDS
        assert cached_until(shipment) == min(shipment.promised_window_end.timestamp(), position_bound)
        shipment.promised_window_end = timezone.now() + timedelta(seconds=10)
        assert cached_until(shipment) == shipment.promised_window_end.timestamp()
        shipment.refresh_from_db()
    assert RUNNING_LATE not in page(client, shipment)
    if page_cache.shared_redis() is not None:
        assert page_cache.lookup(shipment.public_token, "page:~en").html is not None  # it was kept
    with time_machine.travel(shipment.promised_window_end + SECOND, tick=False):
        assert RUNNING_LATE in status_card(page(client, shipment))
        assert RUNNING_LATE in status_card(page(client, shipment, HTTP_HX_REQUEST="true"))
        assert RUNNING_LATE in frame(client, shipment)


def test_an_eta_after_the_window_is_running_late_with_the_new_time(client, on_its_way):
    shipment = on_its_way(eta=timedelta(hours=3))
    card = status_card(page(client, shipment))
    assert RUNNING_LATE in card and "Now expected around" in card
    assert f'<time datetime="{iso(shipment.eta)}">' in card
    assert "<del>" in card and "Delivery window" not in card


def test_an_eta_inside_the_window_is_expected_around(client, on_its_way):
    shipment = on_its_way(eta=timedelta(hours=1))
    card = status_card(page(client, shipment))
    assert "Expected around" in card and RUNNING_LATE not in card
    # Once it has passed, the window (still open) is what holds.
    with time_machine.travel(shipment.eta + SECOND, tick=False):
        card = status_card(page(client, shipment))
    assert "Expected around" not in card and "Delivery window" in card and RUNNING_LATE not in card


def test_an_open_late_alert_shows_running_late_before_the_window_ends(client, on_its_way):
    shipment = on_its_way(eta=timedelta(hours=1))
    alerts.open_alert(shipment=shipment, kind="late", now=timezone.now())
    assert RUNNING_LATE in status_card(page(client, shipment))


def test_after_delivery_no_running_late_and_no_checking_even_with_alerts_open(client, on_its_way):
    shipment = on_its_way()
    for kind in ("late", "missed_scan"):
        alerts.open_alert(shipment=shipment, kind=kind, now=timezone.now())
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    # Whatever the rules have resolved by now, the page says nothing of either.
    card = status_card(page(client, shipment))
    assert "Delivered" in card and RUNNING_LATE not in card and "checking on your parcel" not in card


def test_an_open_missed_scan_says_the_portal_is_checking_and_nothing_of_the_driver(client, on_its_way):
    shipment = on_its_way()
    Driver.objects.create(brand=shipment.brand, ref="drv-secret-ref", name="Dave Driverson")
    assert "checking on your parcel" not in page(client, shipment)
    alerts.open_alert(
        shipment=shipment, kind="missed_scan", now=timezone.now(), detail={"driver_ref": "drv-secret-ref"}
    )
    html = page(client, shipment)
    assert "We're checking on your parcel with the driver" in status_card(html)
    assert "drv-secret-ref" not in html and "Driverson" not in html
    assert "checking on your parcel with the driver" in frame(client, shipment)


def test_the_widget_frame_runs_late_too(client, on_its_way):
    shipment = on_its_way(eta=timedelta(hours=4))
    html = frame(client, shipment)
    assert RUNNING_LATE in html and "Now expected around" in html and "Delivery window" not in html


def test_the_order_frame_runs_late_too(client, brand, on_its_way):
    brand.embed_secret = "embsec_test-secret"
    brand.save()
    late, on_time = on_its_way(order_ref="ORD-L", eta=timedelta(hours=4)), on_its_way(order_ref="ORD-L")
    expires = int(timezone.now().timestamp()) + 600
    url = reverse("pages:embed_order", args=["acme", "ORD-L"])
    query = {"expires": str(expires), "signature": order_signature("embsec_test-secret", "ORD-L", expires)}
    html = client.get(url, query, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    items = dict(re.findall(r'<span class="mono">(LM\d+)</span>.*?(<p class="embed-parcel-when.*?</p>)', html, re.S))
    assert RUNNING_LATE in items[late.tracking_number] and iso(late.eta) in items[late.tracking_number]
    assert RUNNING_LATE not in items[on_time.tracking_number]
    assert "Delivery window" in items[on_time.tracking_number]


def test_the_cache_lives_no_longer_than_the_link_after_delivery(on_its_way):
    shipment = on_its_way()
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    shipment.refresh_from_db()
    lifetime = timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY)
    assert cached_until(shipment) == (shipment.delivered_at + lifetime).timestamp()
