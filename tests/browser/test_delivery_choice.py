"""After a failed attempt, the customer's choice in a real browser, with
JavaScript and without; the pickup card; screenshots at a phone's and a
desktop's size; axe-clean."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from shipments import choices, services
from shipments.models import DeliveryChoice
from shipments.services import NewEvent

from .test_tracking_page import serious_violations

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WEEKDAYS = [{"day": day, "opens": "09:00", "closes": "18:00"} for day in range(5)]


def scan(status, minutes_ago, text, external_id, **extra):
    return NewEvent(
        status=status,
        occurred_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        external_id=external_id,
        description=text,
        location_city="London",
        **extra,
    )


@pytest.fixture
def points(brand):
    return [
        choices.create_pickup_point(
            brand=brand,
            name="Corner Shop",
            line1="3 High Street",
            postcode="N1 9GU",
            city="London",
            lat=51.5362,
            lng=-0.1033,
            opening_hours=[*WEEKDAYS, {"day": 5, "opens": "10:00", "closes": "16:00"}],
        ),
        choices.create_pickup_point(
            brand=brand,
            name="Station Locker",
            line1="Platform 1, King's Cross",
            postcode="N1C 4AP",
            city="London",
            lat=51.5308,
            lng=-0.1238,
            opening_hours=[{"day": day, "opens": "00:00", "closes": "23:59"} for day in range(7)],
        ),
    ]


@pytest.fixture
def failed(make_shipment, points):
    shipment = make_shipment(recipient_timezone="Europe/London")
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            scan("in_transit", 300, "Arrived at the London depot", "s1"),
            scan("out_for_delivery", 120, "On the van", "s2"),
            scan("failed_attempt", 30, "No one home", "s3", substatus="recipient_unavailable"),
        ],
    )
    return shipment


def shoot(page, artifacts, name):
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    page.screenshot(path=artifacts / f"{name}-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(150)
    page.screenshot(path=artifacts / f"{name}-1280x900.png", full_page=True)
    page.set_viewport_size(PHONE)


def test_a_new_day_without_javascript(asgi_server, browser, failed, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto(asgi_server + failed.get_absolute_url())
    shoot(page, artifacts, "failed-attempt-no-javascript")
    page.get_by_role("link", name="Choose a new day, a safe place, a neighbour or a pickup point").click()
    section = page.locator("#delivery-choice")
    expect(section).to_be_visible()
    section.get_by_text("Deliver on another day").click()
    days = section.get_by_role("radio")
    first_day = days.first.get_attribute("value")
    days.first.check()
    shoot(page, artifacts, "delivery-choice-form-no-javascript")
    section.get_by_role("button", name="Deliver on this day").click()
    expect(page).to_have_url(asgi_server + failed.get_absolute_url() + "#status")
    expect(page.locator("#choice-confirmation")).to_contain_text("We'll bring it on")
    expect(page.locator("#timeline")).to_contain_text("Your choice")
    shoot(page, artifacts, "delivery-choice-confirmed-no-javascript")
    assert DeliveryChoice.objects.get(shipment=failed).date.isoformat() == first_day
    context.close()


def test_a_pickup_point_and_a_bad_safe_place_with_javascript(asgi_server, browser, failed, points, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(asgi_server + failed.get_absolute_url())
    # htmx loads the forms into the page's own #actions slot.
    section = page.locator("#actions #delivery-choice")
    expect(section).to_be_visible()
    assert serious_violations(page) == []

    section.get_by_text("Leave it in a safe place").click()
    box = section.get_by_label("Where should the driver leave it?")
    box.evaluate("element => element.removeAttribute('maxlength')")
    box.fill("x" * 201)
    section.get_by_role("button", name="Leave it there").click()
    expect(page.locator("#delivery-choice .field-error")).to_contain_text("Please keep it to 200 characters")
    shoot(page, artifacts, "delivery-choice-error")
    assert not DeliveryChoice.objects.filter(shipment=failed).exists()

    page.goto(asgi_server + failed.get_absolute_url())
    section = page.locator("#actions #delivery-choice")
    section.get_by_text("Collect it from a pickup point").click()
    section.get_by_label("Station Locker").check()
    shoot(page, artifacts, "delivery-choice-pickup-points")
    assert serious_violations(page) == []
    section.get_by_role("button", name="Collect it here").click()
    expect(page.locator("#choice-confirmation")).to_contain_text("We'll take it to Station Locker")
    assert DeliveryChoice.objects.get(shipment=failed).pickup_point == points[1]
    assert errors == []
    context.close()


def test_the_pickup_points_map_beside_the_list(asgi_server, browser, failed, points, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(asgi_server + failed.get_absolute_url())
    section = page.locator("#actions #delivery-choice")
    section.get_by_text("Collect it from a pickup point").click()
    expect(section.locator(".pickup-map")).to_be_visible()
    markers = section.locator(".pickup-map .point-marker")
    expect(markers).to_have_count(2)
    assert markers.all_inner_texts() == ["A", "B"]
    # A marker picks its point in the list, which the form sends.
    section.locator(".leaflet-marker-icon[title='Station Locker']").click()
    expect(section.get_by_label("Station Locker")).to_be_checked()
    expect(section.locator(".leaflet-marker-icon.chosen")).to_have_attribute("title", "Station Locker")
    # Both markers are in view.
    box = section.locator(".pickup-map").bounding_box()
    for marker in markers.all():
        at = marker.bounding_box()
        assert box["x"] <= at["x"] and at["x"] + at["width"] <= box["x"] + box["width"]
        assert box["y"] <= at["y"] and at["y"] + at["height"] <= box["y"] + box["height"]
    shoot(page, artifacts, "delivery-choice-pickup-map")
    assert serious_violations(page) == []
    section.get_by_role("button", name="Collect it here").click()
    expect(page.locator("#choice-confirmation")).to_contain_text("We'll take it to Station Locker")
    assert errors == []
    context.close()


def test_the_pickup_points_without_javascript_have_no_map(asgi_server, browser, failed, points):
    context = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto(asgi_server + failed.get_absolute_url() + "actions/")
    section = page.locator("#delivery-choice")
    section.get_by_text("Collect it from a pickup point").click()
    expect(section.locator(".pickup-map")).to_be_hidden()
    expect(section.locator(".point-letter").first).to_be_hidden()
    section.get_by_label("Corner Shop").check()
    section.get_by_role("button", name="Collect it here").click()
    expect(page.locator("#choice-confirmation")).to_contain_text("We'll take it to Corner Shop")
    context.close()


def test_a_parcel_ready_for_pickup(asgi_server, browser, make_shipment, points, artifacts):
    shipment = make_shipment(recipient_timezone="Europe/London")
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            scan("in_transit", 300, "Arrived at the London depot", "s1"),
            scan("available_for_pickup", 60, "Ready to collect at Corner Shop", "s2"),
        ],
    )
    choices.set_pickup_hold(
        shipment=shipment,
        pickup_point=points[0],
        collection_code="K7-2291",
        collect_by=timezone.localdate() + dt.timedelta(days=7),
    )
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(asgi_server + shipment.get_absolute_url())
    expect(page.locator("#pickup")).to_contain_text("K7-2291")
    expect(page.locator("#pickup")).to_contain_text("Collect by")
    expect(page.locator("#map-card")).to_be_visible()
    expect(page.locator("#map .leaflet-marker-icon[title='Corner Shop'] .place-pin")).to_be_visible()
    expect(page.locator("#map path.leaflet-interactive")).to_have_count(0)  # no vague circle
    expect(page.locator("[aria-current=step]")).to_contain_text("Ready for pickup")
    page.locator("#pickup summary").click()
    shoot(page, artifacts, "ready-for-pickup")
    assert serious_violations(page) == []
    context.close()
