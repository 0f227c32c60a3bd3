"""The status widget in a real browser, across origins: a brand's page on
127.0.0.2 (a small http.server) pastes the loader from the portal on
127.0.0.1 (uvicorn), as a shop's site would."""

import contextlib
import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from shipments import services
from shipments.embedding import order_signature
from shipments.services import NewEvent

pytestmark = pytest.mark.browser

HOST_ADDRESS = "127.0.0.2"
SECRET = "embsec_browser-test-secret"
# widget.js: the frame's height before it has spoken, and the clamp.
INITIAL_HEIGHT = 200
MIN_HEIGHT, MAX_HEIGHT = 120, 2000
WIDGET = "[data-tracking-widget] iframe"
# Inside a frame: where its content ends.
CONTENT_BOTTOM = "() => Math.ceil(Math.max(...[...document.body.children].map(e => e.getBoundingClientRect().bottom)))"


@contextlib.contextmanager
def host_site():
    """A brand's site on another loopback address: serves what the test puts
    in ``pages`` (path -> HTML); yields (origin, pages)."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer((HOST_ADDRESS, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST_ADDRESS}:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def shop():
    with host_site() as site:
        yield site


@pytest.fixture
def other_shop():
    with host_site() as site:
        yield site


def host_page(portal: str, *widgets: str, lang: str = "en") -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>A shop</title></head>'
        f"<body><h1>Your order</h1>{''.join(widgets)}"
        f'<script src="{portal}/widget.js" async></script></body></html>'
    )


def scan(status, minutes_ago, text, external_id):
    return NewEvent(
        status=status,
        occurred_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        external_id=external_id,
        description=text,
        location_city="London",
    )


@pytest.fixture
def parcel(brand, make_shipment):
    shipment = make_shipment(tracking_number="LM777001", order_ref="ORD-77")
    services.record_events(
        shipment_id=shipment.pk,
        events=[
            scan("info_received", 600, "Label created", "w1"),
            scan("in_transit", 60, "Arrived at the London depot", "w2"),
        ],
    )
    return shipment


def allow(brand, *origins):
    brand.embed_origins = "\n".join(origins)
    brand.embed_secret = SECRET
    brand.save()


def frame_height(page, selector=WIDGET) -> int:
    return page.eval_on_selector(selector, "frame => frame.getBoundingClientRect().height")


def wait_for_height(page, condition: str, selector=WIDGET) -> None:
    """Until the frame's height ``h`` meets ``condition`` (JavaScript)."""
    page.wait_for_function(
        "selector => { const h = document.querySelector(selector).getBoundingClientRect().height; "
        f"return {condition}; }}",
        arg=selector,
    )


def assert_fits(page, selector=WIDGET) -> None:
    """The iframe comes to its content's height (within a pixel or two)."""
    deadline = time.monotonic() + 5
    while True:
        gap = abs(frame_height(page, selector) - widget_frame(page, selector).evaluate(CONTENT_BOTTOM))
        if gap <= 2:
            return
        assert time.monotonic() < deadline, f"the frame stays {gap}px off its content"
        page.wait_for_timeout(100)


def widget_frame(page, selector=WIDGET):
    page.wait_for_selector(selector, state="attached")
    return page.locator(selector).element_handle().content_frame()


def test_an_allowed_origin_shows_the_parcel_and_the_frame_takes_its_contents_height(
    asgi_server, browser, brand, parcel, shop, artifacts
):
    origin, pages = shop
    allow(brand, origin)
    pages["/"] = host_page(
        asgi_server,
        f'<div id="one" data-tracking-widget data-brand="acme" data-token="{parcel.public_token}">'
        f'<a href="{asgi_server}{parcel.get_absolute_url()}">Track your parcel</a></div>',
        '<div id="two" data-tracking-widget data-brand="acme"><a href="/track">Find a parcel</a></div>',
    )
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(origin + "/")
    # The fallback goes once the frame is in; each element gets its own.
    expect(page.locator("#one iframe")).to_have_count(1)
    expect(page.locator("#two iframe")).to_have_count(1)
    expect(page.locator("#one a")).to_have_count(0)
    frame = page.locator("#one iframe")
    assert frame.get_attribute("src").startswith(f"{asgi_server}/embed/t/{parcel.public_token}/?")
    assert "lang=en" in frame.get_attribute("src")
    assert frame.get_attribute("referrerpolicy") == "no-referrer"
    assert frame.get_attribute("loading") == "lazy"
    assert "allow-top-navigation" not in frame.get_attribute("sandbox")
    assert frame.get_attribute("title") == "Parcel tracking"

    inside = page.frame_locator("#one iframe")
    expect(inside.locator("#status-headline")).to_have_text("In transit")
    expect(inside.locator("body")).to_contain_text("Arrived at the London depot")
    # The frame's own content height, not the loader's first guess.
    wait_for_height(page, f"h !== {INITIAL_HEIGHT}", "#one iframe")
    assert_fits(page, "#one iframe")
    assert MIN_HEIGHT <= frame_height(page, "#one iframe") <= MAX_HEIGHT
    # The look-up widget beside it is sized from its own frame's messages.
    expect(page.frame_locator("#two iframe").locator("form")).to_be_visible()
    wait_for_height(page, f"h !== {INITIAL_HEIGHT}", "#two iframe")
    assert frame_height(page, "#two iframe") != frame_height(page, "#one iframe")
    page.screenshot(path=artifacts / "widget-on-a-shop-390x844.png", full_page=True)
    page.close()


def test_an_origin_the_brand_did_not_list_gets_no_frame(asgi_server, browser, brand, parcel, shop, other_shop):
    allow(brand, shop[0])
    origin, pages = other_shop
    pages["/"] = host_page(
        asgi_server,
        f'<div data-tracking-widget data-token="{parcel.public_token}"><a href="/track">Track your parcel</a></div>',
    )
    page = browser.new_page()
    refusals = []
    page.on("console", lambda message: refusals.append(message.text) if "frame-ancestors" in message.text else None)
    page.goto(origin + "/")
    deadline = time.monotonic() + 5
    while not refusals and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert refusals, "Chromium did not report the frame-ancestors refusal"
    frame = widget_frame(page)
    assert parcel.tracking_number not in (frame.content() if frame else "")
    assert "In transit" not in (frame.content() if frame else "")
    # A frame that never spoke gives way to the element's own link again.
    expect(page.get_by_role("link", name="Track your parcel")).to_be_visible(timeout=6000)
    expect(page.locator("iframe")).to_have_count(0)
    page.close()


def test_a_forged_or_expired_signature_shows_nothing_of_the_order(asgi_server, browser, brand, parcel, shop):
    origin, pages = shop
    allow(brand, origin)
    expires = int(time.time()) + 600
    good = order_signature(SECRET, "ORD-77", expires)
    past = int(time.time()) - 60
    cases = {
        "good": (expires, good),
        "forged": (expires, order_signature("embsec_not-the-brands", "ORD-77", expires)),
        "tampered": (expires + 1, good),
        "expired": (past, order_signature(SECRET, "ORD-77", past)),
    }
    pages["/"] = host_page(
        asgi_server,
        *(
            f'<div id="{name}" data-tracking-widget data-brand="acme" data-order="ORD-77" '
            f'data-expires="{when}" data-signature="{signature}"></div>'
            for name, (when, signature) in cases.items()
        ),
    )
    page = browser.new_page()
    page.goto(origin + "/")
    expect(page.frame_locator("#good iframe").locator("body")).to_contain_text(parcel.tracking_number)
    for name in ("forged", "tampered", "expired"):
        inside = page.frame_locator(f"#{name} iframe")
        expect(inside.locator("#not-found-title")).to_have_text("Nothing to show here")
        body = inside.locator("body").inner_text()
        for secret in (parcel.tracking_number, "ORD-77", "Ada", "London", "In transit"):
            assert secret not in body, (name, secret)
    page.close()


def test_another_brands_parcel_is_not_shown_in_a_brands_widget(
    asgi_server, browser, brand, other_brand, make_shipment, shop
):
    origin, pages = shop
    allow(brand, origin)
    allow(other_brand, origin)
    theirs = make_shipment(for_brand=other_brand, tracking_number="OT000001")
    pages["/"] = host_page(
        asgi_server, f'<div data-tracking-widget data-brand="acme" data-token="{theirs.public_token}"></div>'
    )
    page = browser.new_page()
    with page.expect_response(lambda response: "/embed/t/" in response.url) as answered:
        page.goto(origin + "/")
    # The same 404 as an unknown token, whichever brand's parcel it is.
    assert answered.value.status == 404
    frame = widget_frame(page)
    frame.wait_for_load_state()
    assert "OT000001" not in frame.content()
    page.close()


def test_a_status_change_appears_in_the_widget_without_a_reload(asgi_server, browser, brand, parcel, shop):
    origin, pages = shop
    allow(brand, origin)
    pages["/"] = host_page(asgi_server, f'<div data-tracking-widget data-token="{parcel.public_token}"></div>')
    page = browser.new_page()
    page.goto(origin + "/")
    inside = page.frame_locator("iframe")
    expect(inside.locator("#status-headline")).to_have_text("In transit")
    expect(inside.locator("#live.connected")).to_be_attached(timeout=5000)
    assert_fits(page)
    before = frame_height(page)
    page.evaluate("() => { window.notReloaded = true; }")
    services.record_event(shipment_id=parcel.pk, event=scan("out_for_delivery", 0, "On the van with your driver", "w3"))
    expect(inside.locator("#status-headline")).to_have_text("Out for delivery", timeout=5000)
    expect(inside.locator("body")).to_contain_text("On the van with your driver")
    assert page.evaluate("() => window.notReloaded") is True
    # The swapped content's height reaches the iframe (widget-frame.js).
    assert_fits(page)
    assert frame_height(page) != before
    page.close()


def test_a_resize_message_counts_only_from_the_widgets_own_frame_and_is_clamped(
    asgi_server, browser, brand, parcel, shop
):
    origin, pages = shop
    allow(brand, origin)
    pages["/"] = host_page(asgi_server, f'<div data-tracking-widget data-token="{parcel.public_token}"></div>')
    page = browser.new_page()
    page.goto(origin + "/")
    expect(page.frame_locator("iframe").locator("#status-headline")).to_have_text("In transit")
    wait_for_height(page, f"h !== {INITIAL_HEIGHT}")
    settled = frame_height(page)

    # The host page itself (another origin than the portal's).
    page.evaluate("() => window.postMessage({type: 'tracking-widget:resize', height: 1500}, '*')")
    # A frame of the portal's origin that is not the widget's: the look-up
    # frame, put in by hand, speaking with a huge height.
    page.evaluate(
        """src => { const f = document.createElement('iframe'); f.id = 'stray'; f.src = src;
                    document.body.appendChild(f); }""",
        f"{asgi_server}/embed/acme/",
    )
    stray = widget_frame(page, "#stray")
    stray.wait_for_load_state()
    stray.evaluate("() => parent.postMessage({type: 'tracking-widget:resize', height: 1500}, '*')")
    # A popup of the portal's origin, writing to the page that opened it.
    with page.expect_popup() as opened:
        page.evaluate("src => window.open(src)", f"{asgi_server}/embed/acme/")
    popup = opened.value
    popup.wait_for_load_state()
    popup.evaluate(
        "() => window.opener && window.opener.postMessage({type: 'tracking-widget:resize', height: 1500}, '*')"
    )
    page.wait_for_timeout(300)
    assert frame_height(page) == settled

    # From the widget's own frame: a non-number is ignored, a height is clamped.
    own = widget_frame(page)
    own.evaluate("() => parent.postMessage({type: 'tracking-widget:resize', height: '1500'}, '*')")
    own.evaluate("() => parent.postMessage({type: 'tracking-widget:resize', height: NaN}, '*')")
    page.wait_for_timeout(200)
    assert frame_height(page) == settled
    own.evaluate("() => parent.postMessage({type: 'tracking-widget:resize', height: 1e9}, '*')")
    wait_for_height(page, f"h === {MAX_HEIGHT}")
    own.evaluate("() => parent.postMessage({type: 'tracking-widget:resize', height: 3}, '*')")
    wait_for_height(page, f"h === {MIN_HEIGHT}")
    popup.close()
    page.close()


def test_data_attributes_cannot_inject_markup_or_reach_another_path(asgi_server, browser, brand, parcel, shop):
    origin, pages = shop
    allow(brand, origin)
    pages["/"] = host_page(
        asgi_server,
        '<div id="script" data-tracking-widget data-token="&lt;img src=x onerror=window.hacked=1&gt;"></div>',
        '<div id="dots" data-tracking-widget data-token=".."><a href="/x">fallback</a></div>',
        '<div id="slash" data-tracking-widget data-brand="acme" data-order="../../admin/" data-expires="1" '
        'data-signature="x"></div>',
    )
    page = browser.new_page()
    page.goto(origin + "/")
    expect(page.locator("#script iframe")).to_have_count(1)
    src = page.locator("#script iframe").get_attribute("src")
    assert src.startswith(f"{asgi_server}/embed/t/%3Cimg%20src%3Dx%20onerror%3Dwindow.hacked%3D1%3E/")
    assert page.locator("#script img").count() == 0
    assert page.evaluate("() => window.hacked") is None
    # A token of dots would resolve to another path: no frame, the fallback stays.
    expect(page.locator("#dots a")).to_have_text("fallback")
    assert page.locator("#dots iframe").count() == 0
    assert "/embed/acme/orders/..%2F..%2Fadmin%2F/" in page.locator("#slash iframe").get_attribute("src")
    page.close()


def test_without_javascript_the_fallback_link_stays(asgi_server, browser, brand, parcel, shop):
    origin, pages = shop
    allow(brand, origin)
    link = f"{asgi_server}{parcel.get_absolute_url()}"
    pages["/"] = host_page(
        asgi_server,
        f'<div data-tracking-widget data-token="{parcel.public_token}"><a href="{link}">Track your parcel</a></div>',
    )
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(origin + "/")
    expect(page.locator("iframe")).to_have_count(0)
    page.get_by_role("link", name="Track your parcel").click()
    page.wait_for_url(link)
    expect(page.locator("#status-headline")).to_have_text("In transit")
    context.close()


def test_the_widget_speaks_the_host_pages_language(asgi_server, browser, brand, parcel, shop):
    origin, pages = shop
    allow(brand, origin)
    pages["/"] = host_page(
        asgi_server,
        f'<div id="page" data-tracking-widget data-token="{parcel.public_token}"></div>',
        f'<div id="own" data-tracking-widget data-lang="es" data-token="{parcel.public_token}"></div>',
        lang="de-AT",
    )
    page = browser.new_page()
    page.goto(origin + "/")
    # The page's language by its primary subtag; an element's own data-lang first.
    expect(page.frame_locator("#page iframe").locator("#status-headline")).to_have_text("Unterwegs")
    expect(page.frame_locator("#own iframe").locator("#status-headline")).to_have_text("En tránsito")
    assert page.locator("#page iframe").get_attribute("title") == "Sendungsverfolgung"
    assert page.locator("#own iframe").get_attribute("title") == "Seguimiento de paquetes"
    page.close()
