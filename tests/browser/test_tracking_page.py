"""The tracking page in a real browser: live updates, no JavaScript, accessibility."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from shipments import alerts, drivers, eta, keys, services
from shipments.customer import report_problem
from shipments.models import Alert, Driver, Route, Stop
from shipments.services import NewEvent

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def scan(status, minutes_ago, text, external_id, city="London"):
    return NewEvent(
        status=status,
        occurred_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        external_id=external_id,
        description=text,
        location_city=city,
    )


@pytest.fixture
def parcel(brand, make_shipment):
    brand.support_phone = "+442079460000"
    brand.support_url = "https://acme.example/help"
    brand.save()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    shipment = make_shipment(
        recipient_timezone="Europe/London",
        promised_window_start=now + dt.timedelta(hours=2),
        promised_window_end=now + dt.timedelta(hours=5),
    )
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            scan("info_received", 900, "Label created", "s1", "Reading"),
            scan("in_transit", 400, "Left the Reading hub", "s2", "Reading"),
            scan("in_transit", 60, "Arrived at the London depot", "s3"),
        ],
    )
    driver = Driver.objects.create(
        brand=brand, ref="drv-7", last_lat=51.5010, last_lng=-0.1250, last_position_at=timezone.now()
    )
    route = Route.objects.create(driver=driver, date=timezone.localdate())
    ahead = make_shipment()
    Stop.objects.create(route=route, shipment=ahead, sequence=1)
    Stop.objects.create(route=route, shipment=shipment, sequence=2)
    services.record_event(shipment_id=ahead.pk, event=scan("out_for_delivery", 30, "On the van", "a1"))
    return shipment


def post_events(base_url, brand, *events):
    _, key = keys.create_api_key(brand=brand, name="browser test")
    response = httpx.post(
        base_url + "/api/v1/events",
        json={"events": list(events)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events), response.text
    return response


def api_event(shipment, status, external_id, text):
    return {
        "tracking_number": shipment.tracking_number,
        "status": status,
        "occurred_at": timezone.now().isoformat(),
        "external_id": external_id,
        "description": text,
        "location": {"city": "London"},
    }


def test_a_posted_event_shows_on_the_open_page_within_two_seconds(asgi_server, browser, brand, parcel, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: response.status >= 400 and errors.append(f"{response.status} {response.url}"))
    page.goto(asgi_server + parcel.get_absolute_url())
    expect(page.locator("#status-headline")).to_have_text("In transit")
    expect(page.locator("#map-card")).to_be_hidden()
    expect(page.locator("#live.connected")).to_be_attached(timeout=5000)
    # The customer's forms, loaded into the page in place.
    expect(page.locator("#actions #instructions form")).to_be_visible()
    page.screenshot(path=artifacts / "tracking-in-transit-390x844.png", full_page=True)
    page.evaluate("window.notReloaded = true")
    loads = []
    page.on("request", lambda request: loads.append(request.url))

    post_events(asgi_server, brand, api_event(parcel, "out_for_delivery", "ofd-1", "On the van with your driver"))
    expect(page.locator("#status-headline")).to_have_text("Out for delivery", timeout=2000)
    # The stream sent the change itself: the page loaded nothing of its own
    # (the visitor's forms may load again: what they can do changed).
    assert [url for url in loads if url.endswith(parcel.get_absolute_url())] == []
    expect(page.locator("#timeline .event-latest")).to_contain_text("On the van with your driver")
    expect(page.locator("#status")).to_contain_text("The driver is 1 stop away.")
    expect(page.locator("#map-card")).to_be_visible()
    expect(page.locator("#map .driver-icon")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_timeout(300)
    page.screenshot(path=artifacts / "tracking-out-for-delivery-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(300)
    page.screenshot(path=artifacts / "tracking-out-for-delivery-1280x800.png", full_page=True)

    post_events(asgi_server, brand, api_event(parcel, "delivered", "dlv-1", "Handed to the resident"))
    expect(page.locator("#status-headline")).to_have_text("Delivered", timeout=2000)
    expect(page.locator("#map-card")).to_be_hidden()
    expect(page.locator("#rating form")).to_be_visible()
    # The journey is over: the stream is closed and nothing polls.
    expect(page.locator("#live.connected")).to_have_count(0)
    expect(page.locator("#live")).to_contain_text("no longer updates")
    assert page.evaluate("window.trackingPage.isPolling()") is False
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=artifacts / "tracking-delivered-1280x800.png", full_page=True)
    assert errors == []
    context.close()


def test_without_server_sent_events_the_page_polls(asgi_server, browser, brand, parcel):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.clock.install()
    page.route(re.compile(r"/events/(\?.*)?$"), lambda route: route.abort())
    page.goto(asgi_server + parcel.get_absolute_url())
    expect(page.locator("#status-headline")).to_have_text("In transit")
    page.wait_for_function("window.trackingPage && window.trackingPage.isPolling()", timeout=5000)

    post_events(asgi_server, brand, api_event(parcel, "out_for_delivery", "ofd-poll", "On the van"))
    page.clock.run_for(16_000)
    expect(page.locator("#status-headline")).to_have_text("Out for delivery", timeout=3000)
    context.close()


def test_the_page_works_without_javascript(asgi_server, browser, parcel, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto(asgi_server + parcel.get_absolute_url())
    expect(page.locator("#status-headline")).to_have_text("In transit")
    expect(page.locator("#timeline .event")).to_have_count(3)
    expect(page.locator("#timeline")).to_contain_text("Arrived at the London depot")
    expect(page.locator("#map-card")).to_be_hidden()
    # Grouped for reading.
    expect(page.locator("#support")).to_contain_text("+44 20 7946 0000")

    # The shared, cached page holds no form: a link leads to the customer's own.
    expect(page.locator("#actions form")).to_have_count(0)
    page.get_by_role("link", name="Leave instructions or get updates").click()
    expect(page).to_have_url(asgi_server + parcel.get_absolute_url() + "actions/")
    expect(page.locator(".brand-bar")).to_contain_text("Acme Parcels")
    page.screenshot(path=artifacts / "actions-no-javascript-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=artifacts / "actions-no-javascript-1280x800.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.get_by_label("Instructions for the driver").fill("Please leave it in the porch")
    page.get_by_role("button", name="Save instructions").click()
    expect(page).to_have_url(asgi_server + parcel.get_absolute_url() + "#instructions")
    expect(page.locator("#instructions")).to_contain_text("Your instructions were passed to the driver")
    parcel.refresh_from_db()
    assert parcel.delivery_instructions == "Please leave it in the porch"

    page.get_by_role("link", name="DE").click()
    expect(page.locator("#status-headline")).to_have_text("Unterwegs")
    page.screenshot(path=artifacts / "tracking-no-javascript-de-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=artifacts / "tracking-no-javascript-de-1280x800.png", full_page=True)

    page.goto(asgi_server + "/track/?lang=en")
    page.get_by_label("Tracking number").fill(parcel.tracking_number)
    page.get_by_label("Delivery postcode or email address").fill("sw1a 2aa")
    page.get_by_role("button", name="Find my parcel").click()
    expect(page).to_have_url(asgi_server + parcel.get_absolute_url())
    context.close()


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(
            node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
            for node in violation["nodes"]
        )
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(asgi_server, browser, brand, parcel, make_shipment):
    services.record_event(shipment_id=parcel.pk, event=scan("out_for_delivery", 5, "On the van", "o1"))
    delivered = make_shipment()
    services.record_event(shipment_id=delivered.pk, event=scan("delivered", 5, "Delivered", "d1"))
    services.attach_proof_of_delivery(shipment_id=delivered.pk, received_by="J. Smith")
    pending = make_shipment()
    expired = make_shipment()
    services.record_event(
        shipment_id=expired.pk,
        event=NewEvent(status="delivered", occurred_at=timezone.now() - dt.timedelta(days=40), external_id="old"),
    )

    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    found = {}
    for name, path in [
        ("out for delivery", parcel.get_absolute_url()),
        ("delivered", delivered.get_absolute_url()),
        ("pending", pending.get_absolute_url()),
        ("expired", expired.get_absolute_url()),
        ("look-up", "/track/"),
        ("spanish", parcel.get_absolute_url() + "?lang=es"),
    ]:
        page.goto(asgi_server + path)
        page.wait_for_load_state("networkidle") if name == "out for delivery" else None
        found[name] = serious_violations(page)
    assert found == {name: [] for name in found}
    context.close()


def test_a_live_update_keeps_the_visitors_subscription_confirmation(asgi_server, browser, brand, parcel):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(asgi_server + parcel.get_absolute_url())
    expect(page.locator("#live.connected")).to_be_attached(timeout=5000)
    page.get_by_label("Email address").fill("someone@example.com")
    page.get_by_role("button", name="Notify me").click()
    expect(page.locator("#notify .notify-done")).to_contain_text("@example.com")

    post_events(asgi_server, brand, api_event(parcel, "out_for_delivery", "ofd-keep", "On the van"))
    expect(page.locator("#status-headline")).to_have_text("Out for delivery", timeout=2000)
    # On the van, instructions are over: the forms were loaded again...
    expect(page.locator("#instructions")).to_have_count(0)
    # ...and this visitor's confirmation stayed.
    expect(page.locator("#notify .notify-done")).to_contain_text("@example.com")
    context.close()


@pytest.fixture
def late_parcel(make_shipment):
    """Out for delivery, promised a window that ended an hour ago."""
    now = timezone.now().replace(second=0, microsecond=0)
    shipment = make_shipment(
        recipient_timezone="Europe/London",
        promised_window_start=now - dt.timedelta(hours=4),
        promised_window_end=now - dt.timedelta(hours=1),
    )
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            scan("in_transit", 400, "Arrived at the London depot", "l1"),
            scan("out_for_delivery", 300, "On the van", "l2"),
        ],
    )
    return shipment


def test_running_late_shows_and_an_alert_turns_an_open_page_late(asgi_server, browser, parcel, late_parcel, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    page.goto(asgi_server + late_parcel.get_absolute_url())
    flag = page.locator("#status .late-flag")
    expect(flag).to_have_text("Running late")
    # Not in the page's normal colour: the warning's.
    expect(flag).to_have_css("color", "rgb(120, 53, 15)")
    expect(page.locator("#status .when-was del")).to_be_visible()
    expect(page.locator("#status")).not_to_contain_text("Delivery window")
    page.screenshot(path=artifacts / "tracking-running-late-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(200)
    page.screenshot(path=artifacts / "tracking-running-late-1280x800.png", full_page=True)

    # A page open on time hears of the alert and of the driver's missed scan.
    page.set_viewport_size(PHONE)
    page.goto(asgi_server + parcel.get_absolute_url())
    expect(page.locator("#status")).to_contain_text("Delivery window")
    expect(page.locator("#live.connected")).to_be_attached(timeout=5000)
    alerts.open_alert(shipment=parcel, kind="late", now=timezone.now())
    expect(page.locator("#status .late-flag")).to_have_text("Running late", timeout=3000)
    alerts.open_alert(shipment=parcel, kind="missed_scan", now=timezone.now())
    expect(page.locator("#status .checking")).to_contain_text("checking on your parcel with the driver", timeout=3000)
    page.screenshot(path=artifacts / "tracking-late-and-checking-390x844.png", full_page=True)
    context.close()


def test_the_customer_reports_a_problem_with_javascript(asgi_server, browser, parcel, artifacts):
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(asgi_server + parcel.get_absolute_url())
    form = page.locator("#actions #report form")
    expect(form).to_be_visible()
    # Not yet delivered: "not received" is not offered.
    expect(form.get_by_role("radio")).to_have_count(2)
    form.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "report-form-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.wait_for_timeout(200)
    page.screenshot(path=artifacts / "report-form-1280x800.png", full_page=True)

    form.get_by_role("radio", name="It is damaged").check()
    form.get_by_label("Tell us more (optional)").fill("The box is <crushed> & wet")
    form.get_by_role("button", name="Send to support").click()
    # With JavaScript the section swaps in place: no navigation.
    expect(page.locator("#report")).to_contain_text("We passed your report to the support team at Acme Parcels")
    expect(page).to_have_url(asgi_server + parcel.get_absolute_url())
    expect(page.locator("#report form")).to_have_count(0)
    (alert,) = Alert.objects.filter(shipment=parcel, kind="customer_report", state="open")
    assert alert.detail == {"problem": "damaged", "text": "The box is <crushed> & wet"}
    assert errors == []
    context.close()


def test_the_late_page_and_the_report_form_have_no_serious_accessibility_violations(asgi_server, browser, late_parcel):
    alerts.open_alert(shipment=late_parcel, kind="missed_scan", now=timezone.now())
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    found = {}
    for name, path in [
        ("late and checking", late_parcel.get_absolute_url()),
        ("report form", late_parcel.get_absolute_url() + "actions/"),
    ]:
        page.goto(asgi_server + path)
        page.wait_for_load_state("networkidle")
        found[name] = serious_violations(page)
    # The server's answer to a report without a choice (the browser's own
    # check of the required choice taken away), then a report passed on.
    page.evaluate("document.querySelectorAll('[name=problem]').forEach(radio => { radio.required = false; })")
    page.get_by_label("Tell us more (optional)").fill("x")
    page.get_by_role("button", name="Send to support").click()
    expect(page.locator("#problem-error")).to_be_visible()
    found["report form with an error"] = serious_violations(page)
    report_problem(shipment_id=late_parcel.pk, problem="other", text="Where is it?")
    page.goto(asgi_server + late_parcel.get_absolute_url())
    page.wait_for_load_state("networkidle")
    found["reported"] = serious_violations(page)
    assert found == {name: [] for name in found}
    context.close()


def test_a_delivered_parcel_is_reported_not_received_without_javascript(asgi_server, browser, parcel, artifacts):
    services.record_event(shipment_id=parcel.pk, event=scan("delivered", 5, "Left in the porch", "d1"))
    context = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto(asgi_server + parcel.get_absolute_url())
    # On the delivered page itself, no link away.
    form = page.locator("#report form")
    expect(form.get_by_role("radio")).to_have_count(3)
    form.get_by_role("radio", name="I have not received it").check()
    form.get_by_role("button", name="Send to support").click()
    expect(page).to_have_url(asgi_server + parcel.get_absolute_url() + "#report")
    expect(page.locator("#report")).to_contain_text("They will be in touch.")
    page.screenshot(path=artifacts / "reported-delivered-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=artifacts / "reported-delivered-1280x800.png", full_page=True)
    (alert,) = Alert.objects.filter(shipment=parcel, kind="customer_report", state="open")
    assert alert.detail == {"problem": "not_received", "text": ""}
    context.close()


@pytest.fixture
def on_the_van(brand, make_shipment):
    """A parcel 3 km east of the van's first ping, whose ETA the portal works out from its pings."""
    now = timezone.now()
    shipment = make_shipment(
        recipient_timezone="Europe/London",
        destination_lat=51.5034,
        destination_lng=-0.0843,
        promised_window_start=now + dt.timedelta(hours=5),
        promised_window_end=now + dt.timedelta(hours=7),
    )
    services.record_event(shipment_id=shipment.pk, event=scan("out_for_delivery", 5, "On the van", "o1"))
    drivers.set_route(
        brand=brand, driver_ref="van-1", date=timezone.localdate(), tracking_numbers=[shipment.tracking_number]
    )
    return shipment


def ping_and_estimate(brand, shipment, lng):
    drivers.record_locations(brand=brand, driver_ref="van-1", pings=[drivers.Ping(51.5034, lng, timezone.now())])
    route = Route.objects.get(stops__shipment=shipment)
    eta.recompute_route(route_id=route.pk, now=timezone.now())


def test_a_new_eta_reaches_the_open_page_without_a_page_load(asgi_server, browser, brand, on_the_van):
    """The ETA worked out again moves only the status card: the stream
    sends the card itself, and the page fetches nothing."""

    def window_end():
        on_the_van.refresh_from_db()
        return f"{on_the_van.computed_window_end.astimezone(ZoneInfo('Europe/London')):%H:%M}"

    ping_and_estimate(brand, on_the_van, -0.1276)
    first_end = window_end()
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    page = context.new_page()
    errors, loads = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: loads.append(request.url))
    page.goto(asgi_server + on_the_van.get_absolute_url())
    expect(page.locator("#status .when-computed")).to_contain_text(first_end)
    expect(page.locator("#live.connected")).to_be_attached(timeout=5000)
    page.wait_for_timeout(300)
    loads.clear()

    # 40 km further away: a later window, hours later.
    ping_and_estimate(brand, on_the_van, -0.70)
    later_end = window_end()
    assert later_end != first_end
    expect(page.locator("#status .when-computed")).to_contain_text(later_end, timeout=3000)
    expect(page.locator("#status-headline")).to_have_text("Out for delivery")
    page.wait_for_timeout(300)
    assert [url for url in loads if "/t/" in url and "/events/" not in url] == []
    assert errors == []
    context.close()
