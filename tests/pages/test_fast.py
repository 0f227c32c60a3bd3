"""A warm tracking page (and widget frame) answered before Django's
handler (pages/fast.py) is the page Django's path answers: the same pages
fetched both ways under a real uvicorn, compared byte for byte but for Date,
a cookie's expiry (both times to the second) and the per-response nonce;
from Redis, and again from the process's own copy."""

import re
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import OperationalError

from pages import cache as page_cache
from pages import tracking
from pages.live.hub import hub
from shipments import services
from shipments.links import link_expires_at
from tests.conftest import event
from tests.tracking_portal.asgi_helpers import exchange, head, serve
from tracking_portal import asgi

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="the page cache needs Redis (set REDIS_URL)"),
]


@pytest.fixture(scope="module")
def server():
    # One server for the module: each test's would hold a port of the range
    # the tests share.
    with serve(asgi.application) as port:
        yield port


@pytest.fixture
def port(server, transactional_db, settings):
    settings.ALLOWED_HOSTS = ["tracking.example.com", "127.0.0.1"]
    return server


@pytest.fixture
def answered(monkeypatch):
    """Whether the fast path answered each request (True) or left it to
    Django (False)."""
    seen = []
    original = asgi.serve_cached_page

    async def spy(scope, send):
        result = await original(scope, send)
        if settings.FAST_CACHED_PAGES:
            seen.append(result)
        return result

    monkeypatch.setattr(asgi, "serve_cached_page", spy)
    return seen


@pytest.fixture
def framed_by_a_shop(brand):
    brand.embed_origins = "https://shop.example.com\nhttps://other-shop.example.com"
    brand.save()
    return brand


def fetch(port, path, *headers, method="GET", host="tracking.example.com"):
    answer = exchange(port, head(method, path, port, "Connection: close", *headers, host=host))
    nonces = set(re.findall(rb"nonce-([A-Za-z0-9_-]+)", answer.raw))
    raw = answer.raw
    for nonce in nonces:
        raw = raw.replace(nonce, b"NONCE")
    # A cookie's expiry is a time to the second, like Date.
    raw = re.sub(rb"expires=[^;]+;", b"expires=EXPIRES;", raw)
    lines = [line for line in raw.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return b"\r\n".join(lines), len(nonces)


def both_ways(port, settings, path, *headers, **how):
    """Django's answer and the fast path's (which falls back to Django for
    what it does not know), warm; the fast path's twice, since the second
    may come from the process's copy, and must be the same."""
    settings.FAST_CACHED_PAGES = False
    fetch(port, path, *headers, **how)  # warms the cache
    through_django, nonces = fetch(port, path, *headers, **how)
    settings.FAST_CACHED_PAGES = True
    served_here, fast_nonces = fetch(port, path, *headers, **how)
    # The hub subscribes on the fast path's first request; once it holds,
    # the next request copies the page and the one after is served from it.
    deadline = time.monotonic() + 5
    while not hub.listening.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    for _ in range(2):
        served_again, again_nonces = fetch(port, path, *headers, **how)
        assert served_again == served_here
        assert again_nonces == fast_nonces
    return through_django, served_here, nonces, fast_nonces


STATES = [["in_transit"], ["in_transit", "out_for_delivery"], ["in_transit", "exception"]]
VISITORS = [
    ("Accept-Language: en",),
    ("Accept-Language: de-DE,de;q=0.9",),
    ("Accept-Language: fr",),
    ("Cookie: django_language=de", "Accept-Language: en"),
    ("Accept-Language: xx",),
]


@pytest.mark.parametrize("statuses", STATES, ids=lambda s: s[-1])
@pytest.mark.parametrize("visitor", VISITORS, ids=lambda v: "|".join(v))
def test_a_warm_page_is_the_same_both_ways(port, settings, shipment, statuses, visitor, monkeypatch):
    for minutes, status in enumerate(statuses):
        services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    through_django, served_here, nonces, fast_nonces = both_ways(port, settings, shipment.get_absolute_url(), *visitor)
    assert served == [shipment.public_token] * 3  # answered here, and counted as views
    assert hub.pages.holds(shipment.public_token)  # the last one from the process's copy
    assert through_django.startswith(b"HTTP/1.1 200 ")
    assert served_here == through_django
    assert fast_nonces == nonces == 1


def test_over_https_behind_a_proxy_the_same_both_ways(port, settings, shipment, monkeypatch):
    # Django's middleware reads the HSTS and redirect settings once, when the
    # handler is made; the proxy's header is read per request on both paths.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    through_django, served_here, *_ = both_ways(port, settings, shipment.get_absolute_url(), "X-Forwarded-Proto: https")
    assert served_here == through_django and served


@pytest.mark.parametrize(
    ("suffix", "headers"),
    [
        ("?lang=de", ()),  # a new choice: Django sets the cookie
        ("", ("HX-Request: true",)),
        ("", ("Cookie: sessionid=abc",)),
        ("?other=1&lang=de", ()),
    ],
)
def test_what_this_path_does_not_know_goes_to_django(port, settings, shipment, monkeypatch, suffix, headers):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    through_django, served_here, *_ = both_ways(port, settings, shipment.get_absolute_url() + suffix, *headers)
    assert served == []
    assert served_here == through_django


def test_a_page_with_the_customers_forms_goes_to_django(port, settings, shipment, monkeypatch):
    """The delivered page carries the rating and report forms: each visitor
    needs a CSRF token of their own, which only Django's middleware gives."""
    for minutes, status in enumerate(["out_for_delivery", "delivered"]):
        services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    fetch(port, shipment.get_absolute_url())  # warm
    answer = fetch(port, shipment.get_absolute_url())[0]
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert served == []
    assert page_cache.CSRF_PLACEHOLDER.encode() not in answer
    assert b'name="csrfmiddlewaretoken"' in answer


def cold(shipment):
    """The page as no one has seen it since it changed: its stored copies
    stale, in Redis and in the server's process (the same process here)."""
    page_cache.invalidate([shipment.public_token])
    hub.pages.drop(shipment.public_token)


@pytest.mark.parametrize("statuses", STATES, ids=lambda s: s[-1])
@pytest.mark.parametrize("visitor", VISITORS, ids=lambda v: "; ".join(v))
def test_a_cold_page_rendered_here_is_the_page_django_renders(port, settings, shipment, answered, statuses, visitor):
    for n, status in enumerate(statuses):
        services.record_event(shipment_id=shipment.pk, event=event(status, external_id=f"c{n}"))
    settings.FAST_CACHED_PAGES = False
    cold(shipment)
    through_django = fetch(port, shipment.get_absolute_url(), *visitor)[0]
    settings.FAST_CACHED_PAGES = True
    cold(shipment)
    rendered_here = fetch(port, shipment.get_absolute_url(), *visitor)[0]
    assert answered == [True]
    assert through_django.startswith(b"HTTP/1.1 200 ")
    # Rendered one epoch apart (each cold() moves it on), which the page's
    # stream URL names: the rest is the same byte for byte.
    django_epoch = re.search(rb"since=(\d+)", through_django).group(1)
    assert rendered_here.replace(b"since=%d" % (int(django_epoch) + 1), b"since=" + django_epoch) == through_django
    # Kept as the view keeps it: the next visitor's page is a warm one.
    assert fetch(port, shipment.get_absolute_url(), *visitor)[0] == rendered_here
    assert answered == [True, True]


def test_a_cold_page_is_one_view(port, settings, shipment, answered, monkeypatch):
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    cold(shipment)
    assert fetch(port, shipment.get_absolute_url())[0].startswith(b"HTTP/1.1 200 ")
    assert served == [shipment.public_token]
    assert answered == [True]


def test_an_unknown_token_or_an_expired_link_goes_to_django(port, settings, shipment, answered, monkeypatch):
    looked = []
    find_page = tracking.find_page
    monkeypatch.setattr(tracking, "find_page", lambda token: looked.append(token) or find_page(token))
    assert fetch(port, "/t/" + "x" * 43 + "/")[0].startswith(b"HTTP/1.1 404 ")
    # Looked for once, here: Django's view answers 404 without a second query.
    assert looked == ["x" * 43]
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    after_expiry = link_expires_at(shipment.__class__.objects.get(pk=shipment.pk)) + timedelta(minutes=1)
    with time_machine.travel(after_expiry, tick=False):
        cold(shipment)
        assert fetch(port, shipment.get_absolute_url())[0].startswith(b"HTTP/1.1 410 ")
    assert answered == [False, False]


def test_for_a_moment_after_the_database_was_away_cold_pages_are_503_at_once(port, shipment, answered, monkeypatch):
    from pages import fast

    tried = []
    render = fast.render_cold_page
    monkeypatch.setattr(fast, "render_cold_page", lambda *args: tried.append(args) or render(*args))
    monkeypatch.setattr(fast, "_database_away", (time.monotonic() + 60, "couldn't get a connection"))
    cold(shipment)
    assert fetch(port, shipment.get_absolute_url())[0].startswith(b"HTTP/1.1 503 ")
    assert tried == []
    monkeypatch.setattr(fast, "_database_away", (0.0, ""))
    assert fetch(port, shipment.get_absolute_url())[0].startswith(b"HTTP/1.1 200 ")
    assert answered == [False, True]
    assert len(tried) == 1


def test_a_render_that_fails_here_is_djangos_to_answer(port, settings, shipment, answered, monkeypatch):
    def broken(*args):
        raise RuntimeError("a template the renderer chokes on")

    monkeypatch.setattr("pages.fast.render_cold_page", broken)
    cold(shipment)
    assert fetch(port, shipment.get_absolute_url())[0].startswith(b"HTTP/1.1 200 ")
    assert answered == [False]


def test_the_database_away_is_a_503_without_a_second_wait(port, settings, shipment, answered, monkeypatch):
    def database_away(*args):
        raise OperationalError("couldn't get a connection after 10.00 sec")

    tried = []
    monkeypatch.setattr("pages.fast.render_cold_page", database_away)
    monkeypatch.setattr("pages.fast._database_away", (0.0, ""))
    monkeypatch.setattr("pages.tracking.find_page", lambda token: tried.append(token))
    cold(shipment)
    answer = fetch(port, shipment.get_absolute_url())[0]
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nretry-after: 5\r\n" in answer.lower()
    assert b"\r\ncache-control: no-store\r\n" in answer.lower()
    assert answered == [False]
    # The view did not wait for the pool a second time.
    assert tried == []


LANGUAGE_CHOICES = [
    ("", ("Cookie: django_language=es", "Accept-Language: de")),  # the cookie
    ("", ("Accept-Language: es-ES,es;q=0.9",)),  # the browser's
    ("?lang=de", ("Cookie: django_language=de",)),  # the switcher, already remembered
    ("?lang=xx", ("Accept-Language: de",)),  # a choice the portal doesn't speak
    ("", ()),  # none: the recipient's
]


@pytest.mark.parametrize(("suffix", "visitor"), LANGUAGE_CHOICES, ids=lambda v: str(v))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_each_language_choice_the_same_both_ways(port, settings, shipment, answered, suffix, visitor, method):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    through_django, served_here, *_ = both_ways(
        port, settings, shipment.get_absolute_url() + suffix, *visitor, method=method
    )
    assert answered == [True] * 3
    assert through_django.startswith(b"HTTP/1.1 200 ")
    assert served_here == through_django


def test_a_head_is_the_same_both_ways_and_not_a_view(port, settings, shipment, answered, monkeypatch):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    through_django, served_here, *_ = both_ways(
        port, settings, shipment.get_absolute_url(), "Accept-Language: en", method="HEAD"
    )
    assert answered == [True] * 3 and served == []
    assert served_here == through_django
    headers, _, body = served_here.partition(b"\r\n\r\n")
    assert body == b"" and int(re.search(rb"content-length: (\d+)", headers, re.I).group(1)) > 1000


FRAME_VISITORS = [
    ("", ("Accept-Language: en",)),
    ("", ("Accept-Language: de-DE,de;q=0.9",)),
    ("", ("Cookie: django_language=es",)),
    ("?lang=de", ()),  # the frame's own switcher: no cookie in a cross-site frame
    ("?brand=acme", ("Accept-Language: en",)),  # the widget's data-brand, the parcel's
    ("?brand=acme&lang=es", ()),
]


@pytest.mark.parametrize("statuses", STATES, ids=lambda s: s[-1])
@pytest.mark.parametrize(("suffix", "visitor"), FRAME_VISITORS, ids=lambda v: str(v))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_warm_widget_frame_is_the_same_both_ways(
    port, settings, framed_by_a_shop, shipment, answered, monkeypatch, statuses, suffix, visitor, method
):
    for minutes, status in enumerate(statuses):
        services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    path = f"/embed/t/{shipment.public_token}/{suffix}"
    through_django, served_here, nonces, fast_nonces = both_ways(port, settings, path, *visitor, method=method)
    assert answered == [True] * 3
    assert served == ([shipment.public_token] * 3 if method == "GET" else [])
    assert hub.pages.holds(shipment.public_token)
    assert through_django.startswith(b"HTTP/1.1 200 ")
    assert b"frame-ancestors https://shop.example.com https://other-shop.example.com" in through_django
    assert b"x-frame-options" not in through_django.lower()
    assert served_here == through_django
    assert fast_nonces == nonces == 1


def test_a_frame_of_another_brand_than_asked_goes_to_django(port, settings, framed_by_a_shop, shipment, answered):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    path = f"/embed/t/{shipment.public_token}/?brand=someone-else"
    through_django, served_here, *_ = both_ways(port, settings, path, "Accept-Language: en")
    assert answered == [False] * 3
    assert through_django.startswith(b"HTTP/1.1 404 ")
    assert served_here == through_django


@pytest.mark.parametrize("path", ["/t/{token}/", "/embed/t/{token}/"])
def test_an_expired_link_the_same_both_ways(port, settings, framed_by_a_shop, shipment, answered, path):
    """Warm while the link works (from Redis and the process's copy), then
    past its expiry: Django's 410 (the page) or 404 (the frame) both ways."""
    for minutes, status in enumerate(["out_for_delivery", "delivered"]):
        services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    path = path.format(token=shipment.public_token)
    settings.FAST_CACHED_PAGES = True
    for _ in range(3):
        assert fetch(port, path, "Accept-Language: en")[0].startswith(b"HTTP/1.1 200 ")
    shipment.refresh_from_db()
    answered.clear()
    with time_machine.travel(link_expires_at(shipment) + timedelta(seconds=1), tick=True):
        through_django, served_here, *_ = both_ways(port, settings, path, "Accept-Language: en")
    assert answered == [False] * 3
    assert through_django.startswith(b"HTTP/1.1 410 " if path.startswith("/t/") else b"HTTP/1.1 404 ")
    assert served_here == through_django


@pytest.mark.parametrize("path", ["/t/{token}/", "/embed/t/{token}/"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_host_not_allowed_goes_to_django(port, settings, framed_by_a_shop, shipment, answered, path, method):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    path = path.format(token=shipment.public_token)
    fetch(port, path, "Accept-Language: en")  # warm, under an allowed host
    answered.clear()
    through_django, served_here, *_ = both_ways(
        port, settings, path, "Accept-Language: en", method=method, host="evil.example.com"
    )
    assert answered == [False] * 3
    assert through_django.startswith(b"HTTP/1.1 400 ")
    assert served_here == through_django


@pytest.mark.parametrize(("declared", "status"), [("0", b"200"), ("100000", b"413")])
def test_a_request_with_a_body_goes_to_the_limit_and_django(port, settings, shipment, answered, declared, status):
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    fetch(port, shipment.get_absolute_url(), "Accept-Language: en")  # warm
    answered.clear()
    through_django, served_here, *_ = both_ways(
        port, settings, shipment.get_absolute_url(), "Accept-Language: en", f"Content-Length: {declared}"
    )
    assert answered == [False] * 3
    assert through_django.startswith(b"HTTP/1.1 " + status)
    assert served_here == through_django
