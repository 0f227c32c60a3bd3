"""The status widget's frames in real Chromium, framed by a shop page on
another origin (127.0.0.2): only the brand's origins may frame them."""

import contextlib
import datetime as dt
import time

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from shipments import services
from shipments.embedding import order_signature

from ..conftest import free_port_in, uvicorn_in_thread
from .conftest import PORTS
from .test_tracking_page import PHONE, scan, serious_violations

pytestmark = pytest.mark.browser

SHOP_HOST = "127.0.0.2"
SECRET = "embsec_browser-test"


def shop_app(html: str):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": html.encode()})

    return app


@contextlib.contextmanager
def shop(frames: list[str]):
    """A shop's page on another origin with a plain iframe of each URL."""
    body = "".join(
        f'<iframe title="Parcel tracking {index}" src="{src}" width="380" height="700"></iframe>'
        for index, src in enumerate(frames)
    )
    html = f'<!doctype html><html lang="en"><head><title>Shop</title></head><body><main>{body}</main></body></html>'
    port = free_port_in(range(PORTS.stop, PORTS.stop + 40))
    with uvicorn_in_thread(shop_app(html), port=port, host=SHOP_HOST):
        yield f"http://{SHOP_HOST}:{port}"


@pytest.fixture
def parcel(brand, make_shipment):
    shipment = make_shipment(order_ref="ORD-55")
    services.record_events(
        shipment_id=shipment.pk,
        events=[scan("info_received", 600, "Label created", "s1"), scan("in_transit", 60, "At the depot", "s2")],
    )
    return shipment


def allow(brand, origin):
    brand.embed_origins = origin
    brand.embed_secret = SECRET
    brand.save()


def frame_of(page, path_part):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for frame in page.frames:
            if path_part in frame.url or frame.url.startswith("chrome-error:"):
                return frame
        time.sleep(0.05)
    raise AssertionError(f"no frame for {path_part}: {[frame.url for frame in page.frames]}")


def test_an_allowed_shop_shows_the_parcel_live(asgi_server, browser, brand, parcel):
    frame_url = asgi_server + reverse("pages:embed_tracking", args=[parcel.public_token])
    with shop([frame_url]) as shop_origin:
        allow(brand, shop_origin)
        page = browser.new_page(viewport=PHONE)
        page.goto(shop_origin)
        frame = page.frame_locator("iframe")
        expect(frame.locator("#status-headline")).to_have_text("In transit")
        expect(frame.locator("#timeline")).to_contain_text("At the depot")
        expect(frame.locator("a[target=_blank]").first).to_have_attribute("href", parcel.get_absolute_url())
        expect(frame.locator("#live.connected")).to_be_attached(timeout=5000)
        services.record_event(shipment_id=parcel.pk, event=scan("out_for_delivery", 1, "On the van", "s3"))
        expect(frame.locator("#status-headline")).to_have_text("Out for delivery", timeout=3000)
        expect(frame.locator("#timeline .event-latest")).to_contain_text("On the van")
        assert page.url == shop_origin + "/"  # no reload of the shop's page
        page.close()


def test_a_shop_the_brand_did_not_allow_gets_no_frame(asgi_server, browser, brand, parcel):
    frame_url = asgi_server + reverse("pages:embed_tracking", args=[parcel.public_token])
    with shop([frame_url]) as shop_origin:
        allow(brand, "https://shop.acme.example")
        page = browser.new_page()
        refused = []
        page.on("console", lambda message: refused.append(message.text) if "frame-ancestors" in message.text else None)
        page.goto(shop_origin)
        page.wait_for_timeout(500)
        frame = frame_of(page, "/embed/t/")
        assert parcel.tracking_number not in frame.content()
        assert refused, "Chromium should report the frame-ancestors refusal"
        page.close()


def test_a_forged_or_expired_order_link_shows_nothing_of_the_order(asgi_server, browser, brand, parcel):
    url = asgi_server + reverse("pages:embed_order", args=[brand.slug, parcel.order_ref])
    good = int(time.time()) + 600
    past = int(time.time()) - 5
    frames = [
        f"{url}?expires={good}&signature={order_signature(SECRET, parcel.order_ref, good)}",
        f"{url}?expires={good}&signature={order_signature('embsec_forged', parcel.order_ref, good)}",
        f"{url}?expires={past}&signature={order_signature(SECRET, parcel.order_ref, past)}",
    ]
    with shop(frames) as shop_origin:
        allow(brand, shop_origin)
        page = browser.new_page()
        page.goto(shop_origin)
        frames = page.frame_locator("iframe")
        expect(frames.nth(0).locator(".embed-parcel")).to_contain_text(parcel.tracking_number)
        for index in (1, 2):
            expect(frames.nth(index).locator("h1")).to_have_text("Nothing to show here")
            expect(frames.nth(index).locator("body")).not_to_contain_text(parcel.tracking_number)
        page.close()


def test_an_orders_frame_follows_each_parcel_live(asgi_server, browser, brand, parcel, make_shipment):
    second = make_shipment(order_ref=parcel.order_ref)
    good = int(time.time()) + 600
    url = asgi_server + reverse("pages:embed_order", args=[brand.slug, parcel.order_ref])
    with shop([f"{url}?expires={good}&signature={order_signature(SECRET, parcel.order_ref, good)}"]) as shop_origin:
        allow(brand, shop_origin)
        page = browser.new_page(viewport=PHONE)
        refetches = []
        page.on("request", lambda request: refetches.append(1) if request.headers.get("hx-request") else None)
        page.goto(shop_origin)
        frame = page.frame_locator("iframe")
        expect(frame.locator(".embed-parcel")).to_have_count(2)
        # Each stream, once open, looks once for what it may have missed.
        deadline = time.monotonic() + 5
        while len(refetches) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert len(refetches) == 2
        expect(frame.locator(f'.embed-parcel:has-text("{second.tracking_number}")')).to_contain_text("Order received")
        services.record_event(shipment_id=second.pk, event=scan("out_for_delivery", 1, "On the van", "o2"))
        expect(frame.locator(f'.embed-parcel:has-text("{second.tracking_number}")')).to_contain_text(
            "Out for delivery", timeout=3000
        )
        expect(frame.locator(f'.embed-parcel:has-text("{parcel.tracking_number}")')).to_contain_text("In transit")
        page.close()


def test_the_lookup_frame_finds_the_parcel_inside_the_frame(asgi_server, browser, brand, parcel):
    with shop([asgi_server + reverse("pages:embed_lookup", args=[brand.slug])]) as shop_origin:
        allow(brand, shop_origin)
        page = browser.new_page(viewport=PHONE)
        page.goto(shop_origin)
        frame = page.frame_locator("iframe")
        frame.get_by_label("Tracking number").fill(parcel.tracking_number)
        frame.get_by_label("Delivery postcode or email address").fill("sw1a 2aa")
        frame.get_by_role("button", name="Find my parcel").click()
        # Third-party cookies are not needed: the form carries no CSRF token.
        expect(frame.locator("#status-headline")).to_have_text("In transit")
        assert page.url == shop_origin + "/"
        page.close()


def test_the_frames_have_no_serious_accessibility_violations(asgi_server, browser, brand, parcel):
    allow(brand, "https://shop.acme.example")
    good = int(time.time()) + 600
    order = reverse("pages:embed_order", args=[brand.slug, parcel.order_ref])
    page = browser.new_page(viewport=PHONE)
    for path in (
        reverse("pages:embed_tracking", args=[parcel.public_token]),
        f"{order}?expires={good}&signature={order_signature(SECRET, parcel.order_ref, good)}",
        reverse("pages:embed_lookup", args=[brand.slug]),
        reverse("pages:embed_tracking", args=["x" * 43]),
    ):
        page.goto(asgi_server + path)
        assert serious_violations(page) == [], path
    page.close()


def test_a_late_parcel_runs_late_in_the_frame_too(asgi_server, browser, brand, make_shipment, artifacts):
    now = timezone.now()
    late = make_shipment(
        promised_window_start=now - dt.timedelta(hours=4),
        promised_window_end=now - dt.timedelta(minutes=30),
        eta=now + dt.timedelta(minutes=45),
    )
    services.record_event(shipment_id=late.pk, event=scan("out_for_delivery", 240, "On the van", "l1"))
    frame_url = asgi_server + reverse("pages:embed_tracking", args=[late.public_token])
    with shop([frame_url]) as shop_origin:
        allow(brand, shop_origin)
        page = browser.new_page(viewport=PHONE)
        page.goto(shop_origin)
        frame = page.frame_locator("iframe")
        expect(frame.locator("#status .late-flag")).to_have_text("Running late")
        expect(frame.locator("#status")).to_contain_text("Now expected around")
        expect(frame.locator("#status .when-was del")).to_be_visible()
        page.screenshot(path=artifacts / "widget-running-late-390x844.png", full_page=True)
        page.close()
    page = browser.new_page(viewport=PHONE)
    page.goto(frame_url)
    assert serious_violations(page) == []
    page.close()
