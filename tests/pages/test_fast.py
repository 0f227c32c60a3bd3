"""A warm tracking page answered before Django's handler (pages/fast.py)
is the page Django's path answers: the same pages fetched both ways under a
real uvicorn, compared byte for byte but for Date and the per-response
nonce."""

import re

import pytest
from django.conf import settings

from pages import cache as page_cache
from shipments import services
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


def fetch(port, path, *headers):
    answer = exchange(port, head("GET", path, port, "Connection: close", *headers, host="tracking.example.com"))
    nonces = set(re.findall(rb"nonce-([A-Za-z0-9_-]+)", answer.raw))
    raw = answer.raw
    for nonce in nonces:
        raw = raw.replace(nonce, b"NONCE")
    lines = [line for line in raw.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return b"\r\n".join(lines), len(nonces)


def both_ways(port, settings, path, *headers):
    settings.FAST_CACHED_PAGES = False
    fetch(port, path, *headers)  # warms the cache
    through_django, nonces = fetch(port, path, *headers)
    settings.FAST_CACHED_PAGES = True
    served_here, fast_nonces = fetch(port, path, *headers)
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
    assert served == [shipment.public_token]  # answered here, and counted as a view
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


def test_an_unknown_token_and_a_cold_page_go_to_django(port, settings, shipment, monkeypatch):
    served = []
    monkeypatch.setattr("pages.fast.count_view_of", served.append)
    assert fetch(port, "/t/" + "x" * 43 + "/")[0].startswith(b"HTTP/1.1 404 ")
    assert fetch(port, shipment.get_absolute_url())[0].startswith(b"HTTP/1.1 200 ")
    assert served == []
