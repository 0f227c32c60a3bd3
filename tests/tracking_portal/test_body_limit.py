"""Body limits (tracking_portal/body_limit.py), replayed as the attacks were
made: raw sockets against the portal under a real uvicorn."""

import json
import re
import threading
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from shipments import keys
from shipments.models import TrackingEvent
from tracking_portal import asgi
from tracking_portal.body_limit import limit_for

from .asgi_helpers import connect, exchange, head, read_head, read_to_close, serve

MB = 1024 * 1024


class Spy:
    """Django's application as it is, counting what reaches it."""

    def __init__(self, app):
        self.app = app
        self.calls = 0
        self.body_bytes = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1

        async def counted_receive():
            message = await receive()
            self.body_bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counted_receive, send)


@pytest.fixture
def spy(monkeypatch):
    spy = Spy(asgi.django_application)
    monkeypatch.setattr(asgi, "django_application", spy)
    return spy


@pytest.fixture
def port(transactional_db, spy, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    with serve(asgi.application) as port:
        yield port


def test_each_path_has_its_limit(settings):
    assert limit_for("/api/v1/shipments/LM1/proof-of-delivery") == settings.API_MAX_UPLOAD_BYTES
    assert limit_for("/api/v1/events") == settings.API_MAX_BODY_BYTES
    assert limit_for("/api/v1/webhooks/easypost/acme") == settings.API_MAX_BODY_BYTES
    assert limit_for("/admin/shipments/brand/1/change/", has_session=True) == settings.ADMIN_MAX_UPLOAD_BYTES
    # A day's spreadsheet of shipments is bigger than a logo or a photo.
    assert settings.ADMIN_MAX_IMPORT_BYTES > settings.ADMIN_MAX_UPLOAD_BYTES
    assert limit_for("/admin/shipments/shipment/import/", has_session=True) == settings.ADMIN_MAX_IMPORT_BYTES
    assert limit_for("/admin/shipments/shipment/import/") == settings.PUBLIC_MAX_BODY_BYTES
    # Without a session (not signed in), and on the login page, an admin
    # form is as small as any page's.
    assert limit_for("/admin/shipments/brand/1/change/") == settings.PUBLIC_MAX_BODY_BYTES
    assert limit_for("/admin/login/", has_session=True) == settings.PUBLIC_MAX_BODY_BYTES
    assert limit_for("/track/") == settings.PUBLIC_MAX_BODY_BYTES
    assert limit_for("/t/abc/instructions/") == settings.PUBLIC_MAX_BODY_BYTES
    # Django reads no more than the largest of them lets through, in memory.
    assert max(settings.API_MAX_BODY_BYTES, settings.PUBLIC_MAX_BODY_BYTES) == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE >= settings.PUBLIC_MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/events", "application/problem+json"),
        ("/api/v1/shipments/LM1/proof-of-delivery", "application/problem+json"),
        ("/track/", "text/plain; charset=utf-8"),
        ("/admin/shipments/brand/add/", "text/plain; charset=utf-8"),
    ],
)
def test_a_declared_50_mb_body_is_refused_before_a_byte_of_it_is_sent(port, spy, path, content_type):
    with connect(port) as sock:
        sock.sendall(head("POST", path, port, "Content-Type: application/json", "Content-Length: 52428800"))
        answer, closed = read_to_close(sock)
    assert answer.status == 413
    assert answer.headers["content-type"] == content_type
    assert answer.headers["connection"] == "close" and closed
    assert answer.headers["cache-control"] == "no-store"
    assert spy.calls == 0
    if path.startswith("/api/"):
        problem = json.loads(answer.body)
        assert problem["status"] == 413 and problem["type"] == "/api/v1/problems/too-large"
        assert problem["instance"] == path


def test_an_unauthenticated_11_mb_login_post_is_refused_unread(port, spy):
    # Within the admin's upload limit, but nobody signed in uploads there.
    with connect(port) as sock:
        sock.sendall(
            head(
                "POST",
                "/admin/login/",
                port,
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 11534336",
            )
        )
        answer, _closed = read_to_close(sock)
    assert answer.status == 413 and spy.calls == 0


def test_the_refusal_is_in_the_visitors_language(port):
    answer = exchange(port, head("POST", "/track/", port, "Accept-Language: de", "Content-Length: 52428800"))
    assert answer.status == 413
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert "64" in answer.body.decode()


def test_a_chunked_150_mb_post_to_the_lookup_is_cut_off_at_the_limit(port, spy, settings):
    """The attack: 150 MB chunked to /track/ without a CSRF token was read
    (and spooled to disk) whole before its 403."""
    chunk = b"tracking_number=" + b"A" * (64 * 1024 - 16)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    replies = []
    with connect(port) as sock:
        sock.sendall(
            head(
                "POST",
                "/track/",
                port,
                "Content-Type: application/x-www-form-urlencoded",
                "Transfer-Encoding: chunked",
            )
        )
        reader = threading.Thread(target=lambda: replies.append(read_to_close(sock)), daemon=True)
        reader.start()
        try:
            while sent < 150 * MB:
                sock.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reader.join(15)
    # The server stopped taking the body: what it let through is what the
    # socket buffers held, nowhere near 150 MB; the application saw no more
    # than the limit (and so Django spooled nothing of the rest).
    assert sent < 32 * MB
    assert spy.calls == 1
    assert spy.body_bytes <= settings.PUBLIC_MAX_BODY_BYTES
    assert replies, "the server neither answered nor closed the connection"
    answer, closed = replies[0]
    assert closed
    if answer.raw:
        # Unless the reset that ends the connection overtook the answer.
        assert answer.status == 413


def test_a_small_api_call_still_works(port, brand, make_shipment):
    make_shipment("LM000001")
    key = keys.create_api_key(brand=brand, name="tests")[1]
    body = json.dumps(
        {
            "events": [
                {
                    "tracking_number": "LM000001",
                    "status": "in_transit",
                    "occurred_at": datetime(2026, 11, 26, 8, tzinfo=UTC).isoformat(),
                    "external_id": "scan-1",
                }
            ]
        }
    ).encode()
    request = head(
        "POST",
        "/api/v1/events",
        port,
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    )
    answer = exchange(port, request + body)
    assert answer.status == 200, answer.raw
    assert json.loads(answer.body)["accepted"] == 1
    assert TrackingEvent.objects.filter(external_id="scan-1").exists()


def test_the_lookup_form_still_works(port, make_shipment):
    shipment = make_shipment("LM000002")
    with connect(port) as sock:
        sock.sendall(head("GET", "/track/", port, "Accept-Language: en", "Connection: close"))
        form, _ = read_to_close(sock)
    assert form.status == 200
    cookie = re.search(r"csrftoken=([^;]+)", form.headers["set-cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body).group(1).decode()
    body = urlencode(
        {"csrfmiddlewaretoken": token, "tracking_number": "LM000002", "postcode_or_email": "SW1A 2AA"}
    ).encode()
    request = head(
        "POST",
        "/track/",
        port,
        f"Cookie: csrftoken={cookie}",
        f"Origin: http://127.0.0.1:{port}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
        "Accept-Language: en",
        "Connection: close",
    )
    with connect(port) as sock:
        sock.sendall(request + body)
        answer = read_head(sock)
    assert answer.status == 303, answer.raw
    assert answer.headers["location"].endswith(shipment.get_absolute_url())
