"""The live stream (/t/<token>/events/) is served by tracking_portal/asgi.py
outside Django's handler, but with the host check and the HTTPS redirect a
page gets: raw requests against the portal under a real uvicorn."""

import pytest

from tracking_portal import asgi

from .asgi_helpers import connect, head, read_head, read_to_close, serve


@pytest.fixture
def port(transactional_db, settings):
    settings.ALLOWED_HOSTS = ["tracking.example.com", "127.0.0.1"]
    with serve(asgi.application) as port:
        yield port


def events_path(shipment) -> str:
    return f"/t/{shipment.public_token}/events/"


def ask(port, path, *headers, host=None):
    with connect(port) as sock:
        sock.sendall(head("GET", path, port, *headers, host=host))
        return read_head(sock)


def test_an_allowed_host_gets_the_stream(port, shipment):
    answer = ask(port, events_path(shipment), host="tracking.example.com")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("host", ["evil.example", "tracking.example.com.evil.example", "evil.example:443"])
def test_a_host_not_allowed_is_refused(port, shipment, host):
    with connect(port) as sock:
        sock.sendall(head("GET", events_path(shipment), port, "Connection: close", host=host))
        answer, _ = read_to_close(sock)
    assert answer.status == 400
    assert b"event:" not in answer.body and b"retry:" not in answer.body
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"


def test_with_debug_and_no_allowed_hosts_only_localhost_is_allowed(port, shipment, settings):
    # Django's own defaults for that case (HttpRequest.get_host).
    settings.DEBUG, settings.ALLOWED_HOSTS = True, []
    assert ask(port, events_path(shipment), "Connection: close", host="evil.example").status == 400
    assert ask(port, events_path(shipment), host="localhost").status == 200


def test_with_ssl_redirect_a_plain_request_is_sent_to_https(port, shipment, settings):
    settings.SECURE_SSL_REDIRECT = True
    answer = ask(port, events_path(shipment) + "?since=1", host="tracking.example.com")
    assert answer.status == 301
    assert answer.headers["location"] == f"https://tracking.example.com{events_path(shipment)}?since=1"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["cache-control"] == "no-store"


def test_behind_a_tls_proxy_the_proxys_header_decides(port, shipment, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    path = events_path(shipment)
    assert ask(port, path, "X-Forwarded-Proto: https", host="tracking.example.com").status == 200
    assert ask(port, path, "X-Forwarded-Proto: http", host="tracking.example.com").status == 301
    assert ask(port, path, host="tracking.example.com").status == 301


def test_a_host_not_allowed_is_refused_before_any_redirect(port, shipment, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert ask(port, events_path(shipment), "Connection: close", host="evil.example").status == 400
