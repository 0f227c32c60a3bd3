"""The page's states in a real browser, in each language, on a phone and a
desktop: screenshots to look at (test-artifacts/), and no serious
accessibility violations. And the map follows the van."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from shipments import choices, drivers, eta, services
from shipments.services import NewEvent

from .test_tracking_page import PHONE, parcel, serious_violations  # noqa: F401 (parcel is a fixture)

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}


def scan(status, minutes_ago, text, external_id, **fields):
    return NewEvent(
        status=status,
        occurred_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        external_id=external_id,
        description=text,
        location_city="London",
        **fields,
    )


@pytest.fixture
def states(brand, make_shipment):
    brand.support_phone = "+442079460000"
    brand.save()
    shop, _locker = (
        choices.create_pickup_point(
            brand=brand,
            name=name,
            line1=line1,
            postcode=postcode,
            city="London",
            lat=lat,
            lng=lng,
            opening_hours=[{"day": day, "opens": "09:00", "closes": "18:00"} for day in range(6)],
        )
        for name, line1, postcode, lat, lng in (
            ("Corner Shop", "3 High Street", "N1 9GU", 51.5362, -0.1033),
            ("Station Locker", "Platform 1, King's Cross", "N1C 4AP", 51.5308, -0.1238),
        )
    )
    now = timezone.now()
    made = {}
    history = [scan("info_received", 900, "Label created", "s1"), scan("in_transit", 400, "Arrived at depot", "s2")]
    for name, last, fields in [
        ("on-the-van", scan("out_for_delivery", 60, "On the van", "o"), {}),
        (
            "late",
            None,
            {"promised_window_start": now - dt.timedelta(hours=4), "promised_window_end": now - dt.timedelta(hours=1)},
        ),
        ("delivered", scan("delivered", 5, "Delivered to front door", "d"), {}),
        ("failed", scan("failed_attempt", 5, "Card left", "f", substatus="recipient_unavailable"), {}),
        ("exception", scan("exception", 5, "Address not found", "e", substatus="address_issue"), {}),
        ("pickup", scan("available_for_pickup", 5, "At collection point", "p"), {}),
        ("pickup-unnamed", scan("available_for_pickup", 5, "Held at local post office, card left", "p"), {}),
        ("returned", scan("returned_to_sender", 5, "Returned", "r"), {}),
    ]:
        shipment = make_shipment(recipient_timezone="Europe/London", **fields)
        services.record_events(shipment_id=shipment.pk, events=[*history, *([last] if last else [])])
        made[name] = shipment
    route = drivers.set_route(
        brand=brand, driver_ref="drv-7", date=now.date(), tracking_numbers=[made["on-the-van"].tracking_number]
    )
    drivers.record_locations(brand=brand, driver_ref="drv-7", pings=[drivers.Ping(51.51, -0.10, now)])
    eta.recompute_route(route_id=route.pk, now=now)
    choices.set_pickup_hold(
        shipment=made["pickup"],
        pickup_point=shop,
        collection_code="K7-2291",
        collect_by=timezone.localdate() + dt.timedelta(days=7),
    )
    return made


# What each state's forms are, once htmx has loaded them into the page.
FORMS = {"failed": "#actions #delivery-choice", "exception": "#actions #address-note"}
# What each state must show, whatever the language.
SHOWS = {
    "on-the-van": ".when-computed",
    "late": ".when-late .late-flag",
    "delivered": "#rating form",
    "pickup": "#pickup .pickup-code",
    "pickup-unnamed": "#pickup.pickup-unknown",
    "returned": ".progress.off-track",
}


@pytest.mark.parametrize("language", ["en", "es", "de"])
def test_each_state_in_each_language_on_phone_and_desktop(asgi_server, browser, states, language, artifacts):
    found = {}
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        context = browser.new_context(viewport=size, locale=language)
        page = context.new_page()
        for name, shipment in states.items():
            page.goto(f"{asgi_server}{shipment.get_absolute_url()}?lang={language}")
            page.wait_for_load_state("networkidle")
            assert page.locator("html").get_attribute("lang") == language
            if name in FORMS:
                expect(page.locator(FORMS[name])).to_be_visible()
            if name == "failed":
                page.locator("#delivery-choice > details").last.locator("> summary").click()
                expect(page.locator(".pickup-map .point-marker")).to_have_count(2)
            if name in SHOWS:
                expect(page.locator(SHOWS[name])).to_be_visible()
            if name in ("pickup", "on-the-van"):
                expect(page.locator("#map-card")).to_be_visible()
            # No step's words run past their step or into the next.
            crowded = page.evaluate(
                """() => [...document.querySelectorAll('.step')].filter(step => {
                    const label = step.querySelector('.step-label');
                    return label.scrollWidth > step.clientWidth + 1;
                }).map(step => step.textContent.trim())"""
            )
            assert crowded == [], (name, size_name, crowded)
            # The support address stays whole, under its kind if need be.
            broken = page.evaluate(
                """() => [...document.querySelectorAll('.contact-value')].filter(value => {
                    const range = document.createRange();
                    range.selectNodeContents(value);
                    return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size > 1;
                }).map(value => value.textContent)"""
            )
            assert broken == [], (name, size_name, broken)
            assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], (name, size_name)
            page.wait_for_timeout(200)
            page.screenshot(path=artifacts / f"state-{name}-{language}-{size_name}.png", full_page=True)
            found[f"{name} {size_name}"] = serious_violations(page)
        context.close()
    assert found == {name: [] for name in found}


def test_the_delivered_page_rates_in_place_with_htmx(asgi_server, browser, states, artifacts):
    shipment = states["delivered"]
    context = browser.new_context(viewport=PHONE, locale="de")
    page = context.new_page()
    page.goto(asgi_server + shipment.get_absolute_url())
    page.locator("label[for=score-4]").click()
    page.get_by_role("button", name="Bewertung senden").click()
    page.get_by_text("Sie haben diese Zustellung mit 4 von 5 bewertet.").wait_for()
    assert page.url.endswith(shipment.get_absolute_url())  # swapped in place, no navigation
    page.screenshot(path=artifacts / "state-delivered-rated-de-phone.png", full_page=True)
    context.close()


def test_the_map_keeps_the_driver_in_view_as_the_van_moves(asgi_server, browser, brand, parcel, artifacts):  # noqa: F811
    services.record_event(shipment_id=parcel.pk, event=scan("out_for_delivery", 5, "On the van", "o1"))
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(asgi_server + parcel.get_absolute_url())
    page.wait_for_function("() => window.trackingPage && window.trackingPage.driverInView()")
    # The position comes over the page's stream.
    expect(page.locator("#live.connected")).to_be_attached(timeout=5000)
    before = page.evaluate("window.trackingPage.mapCentre()")
    # The van drives a few kilometres east: out of the view the page opened with.
    drivers.record_locations(
        brand=brand,
        driver_ref="drv-7",
        pings=[drivers.Ping(lat=51.5010, lng=-0.0500, recorded_at=timezone.now())],
    )
    page.wait_for_function(
        "() => Number(document.getElementById('map-data').dataset.driverLng) === -0.05", timeout=20000
    )
    page.wait_for_function("() => window.trackingPage.driverInView()", timeout=5000)
    after = page.evaluate("window.trackingPage.mapCentre()")
    assert after["lng"] > before["lng"] + 0.02
    page.screenshot(path=artifacts / "map-follows-driver.png")
    context.close()
