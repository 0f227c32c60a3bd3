"""Brand webhooks cannot be turned on the portal's own network, and a reply
cannot take a worker's memory (issue 10, items 2 and 8): the attacks as
they were made, against a real HTTP listener on 127.0.0.1 standing for a
service inside. Also: a queued retry follows the brand's current URL."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from notifications import planning, sending
from notifications.models import BrandNotificationSettings, Notification, State, WebhookAttempt
from notifications.transports import OutgoingMessage, TransportError
from notifications.transports import webhook as webhook_transport
from notifications.transports.webhook import RESPONSE_KEPT, RESPONSE_READ_LIMIT, WebhookTransport
from shipments import services as shipment_services
from shipments.models import Brand

from ..conftest import event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_" + "c" * 32
HUGE = 50 * 1024 * 1024
PUBLIC = "93.184.216.34"


class Listener:
    """An HTTP/1.1 service on 127.0.0.1 (keep-alive, as real endpoints are)
    that answers every request with ``answer(handler)`` and keeps what it
    was sent, which connection it came on and how many body bytes it
    managed to write back."""

    def __init__(self, answer):
        self.answer = answer
        self.received = []
        self.written = 0
        self.answered = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                listener.received.append((self.path, dict(self.headers), body, self.client_address[1]))
                try:
                    listener.answer(self)
                except OSError:
                    self.close_connection = True  # the client hung up, as it should
                finally:
                    listener.answered.set()

            def write(self, data):
                self.wfile.write(data)
                listener.written += len(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def paths(self):
        return [path for path, *_ in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ok(handler):
    handler.send_response(200)
    handler.send_header("content-length", "2")
    handler.end_headers()
    handler.write(b"ok")


def unavailable(handler):
    handler.send_response(503)
    handler.send_header("content-length", "4")
    handler.end_headers()
    handler.write(b"busy")


def redirect_inside(handler):
    handler.send_response(302)
    handler.send_header("location", f"http://127.0.0.1:{handler.server.server_address[1]}/admin/secrets")
    handler.send_header("content-length", "0")
    handler.end_headers()


# What an inside service might answer: markup, terminal escapes, a secret
# well past the excerpt, then far more than any worker should read.
NASTY_HEAD = (
    b"<html><script>alert(1)</script>\x1b[31m\x00 internal  \r\n\t admin page "
    + b"x" * 400
    + b" AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI "
)


def huge_reply(status=200):
    def answer(handler):
        handler.send_response(status)
        handler.send_header("content-type", "text/html")
        handler.send_header("content-length", str(HUGE))
        handler.end_headers()
        handler.write(NASTY_HEAD)
        left, chunk = HUGE - len(NASTY_HEAD), b"B" * 65536
        while left > 0:
            handler.write(chunk[:left])
            left -= len(chunk[:left])

    return answer


def endless_chunks(handler):
    """As good as endless: chunked, with no length declared up front."""
    handler.send_response(200)
    handler.send_header("transfer-encoding", "chunked")
    handler.end_headers()
    chunk = b"C" * 65536
    for _ in range(HUGE // len(chunk)):
        handler.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.write(b"0\r\n\r\n")


@pytest.fixture
def listen():
    started = []

    def start(answer=ok):
        listener = Listener(answer)
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.close()


@pytest.fixture(autouse=True)
def fresh_pool(monkeypatch):
    """Each test gets the worker's pool as a new process would, so that no
    connection kept alive by another test is reused."""
    monkeypatch.setattr(webhook_transport, "_shared", None)


@pytest.fixture
def production(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    return settings


@pytest.fixture
def dns(monkeypatch):
    """The resolver at the edge of the world, for names under .example: what
    each one answers can change between two look-ups, as an attacker's DNS
    server's does."""
    names = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return real(names[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def webhook_only(brand):
    BrandNotificationSettings.objects.create(brand=brand, sms_statuses=[], email_statuses=[])
    return brand


def point_brand_at(brand, url, secret=SECRET):
    """Set the URL as a row already in the database, past every check made
    on saving (an old row, a restored backup, a name that resolved outside
    when it was saved)."""
    Brand.objects.filter(pk=brand.pk).update(webhook_url=url, webhook_secret=secret)


def send_one_webhook(shipment, status="out_for_delivery", minutes=1):
    recorded = shipment_services.record_event(shipment_id=shipment.pk, event=event(status, minutes))
    [notification_id] = planning.plan_notifications(status_change_id=recorded.status_change.pk)
    sending.send_notification(notification_id=notification_id)
    return Notification.objects.get(pk=notification_id)


def send_again(notification):
    """The queued retry, when it comes due."""
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    sending.send_notification(notification_id=notification.pk)
    return Notification.objects.get(pk=notification.pk)


def message_to(url, notification_id=42):
    return OutgoingMessage(
        notification_id=notification_id, channel="webhook", to=url, body='{"type":"t"}', signing_secret=SECRET
    )


# --- refused when sending ---------------------------------------------------


def inside_urls(port):
    return [
        f"http://127.0.0.1:{port}/hooks",
        f"http://localhost:{port}/hooks",
        f"http://[::1]:{port}/hooks",
        f"http://0.0.0.0:{port}/hooks",
        f"http://[::ffff:127.0.0.1]:{port}/hooks",
        f"http://2130706433:{port}/hooks",
        f"http://0x7f000001:{port}/hooks",
        f"http://127.1:{port}/hooks",
        "http://169.254.169.254/latest/meta-data/",
    ]


@pytest.mark.parametrize("which", range(len(inside_urls(0))))
def test_a_webhook_url_inside_is_refused_when_sending(production, listen, webhook_only, make_shipment, which):
    listener = listen()
    point_brand_at(webhook_only, inside_urls(listener.port)[which])

    notification = send_one_webhook(make_shipment())

    assert listener.received == []
    assert notification.state == State.FAILED  # for good: no retry tries it again
    assert "not a public internet address" in notification.last_error or "public addresses only" in (
        notification.last_error
    )
    [attempt] = WebhookAttempt.objects.all()
    assert (attempt.succeeded, attempt.status_code, attempt.response_body) == (False, None, "")
    assert attempt.error == notification.last_error


def test_a_name_that_resolved_outside_when_saved_and_inside_when_sent_is_refused(
    production, listen, dns, webhook_only, make_shipment
):
    listener = listen()
    url = f"http://hooks.rebind.example:{listener.port}/hooks"
    dns["hooks.rebind.example"] = PUBLIC
    call_command("create_brand", webhook_only.slug, "--name", webhook_only.name, "--webhook-url", url)
    assert Brand.objects.get(pk=webhook_only.pk).webhook_url == url  # accepted: it resolved outside

    dns["hooks.rebind.example"] = "127.0.0.1"  # the attacker's DNS answers again, inside
    notification = send_one_webhook(make_shipment())

    assert listener.received == []
    assert notification.state == State.FAILED
    assert notification.last_error == (
        "hooks.rebind.example does not resolve to public addresses only; webhooks are only sent to public addresses."
    )


def test_the_transport_refuses_inside_addresses_for_good(production, listen):
    listener = listen()
    with pytest.raises(TransportError) as refused:
        WebhookTransport(webhook_transport.public_only_pool(2)).send(message_to(listener.url))
    assert refused.value.permanent is True
    assert refused.value.response == ""
    assert listener.received == []


def test_a_redirect_is_not_followed(listen, webhook_only, make_shipment):
    listener = listen(redirect_inside)
    point_brand_at(webhook_only, listener.url)

    notification = send_one_webhook(make_shipment())

    assert listener.paths == ["/hooks"]
    assert notification.state == State.QUEUED
    [attempt] = WebhookAttempt.objects.all()
    assert (attempt.status_code, attempt.succeeded) == (302, False)


# --- a local receiver in development -----------------------------------------


def test_with_private_networks_allowed_a_local_receiver_gets_the_signed_webhook(
    settings, listen, webhook_only, make_shipment
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    listener = listen()
    point_brand_at(webhook_only, listener.url)

    notification = send_one_webhook(make_shipment())

    assert notification.state == State.SENT
    [(path, headers, body, _port)] = listener.received
    assert path == "/hooks"
    assert Webhook(SECRET).verify(body, headers)["type"] == "shipment.status_changed"
    [attempt] = WebhookAttempt.objects.all()
    assert (attempt.url, attempt.status_code, attempt.response_body, attempt.succeeded) == (
        listener.url,
        200,
        "ok",
        True,
    )


def test_keep_alive_connections_are_still_reused(listen):
    listener = listen()
    transport = WebhookTransport(webhook_transport.public_only_pool(2))
    for notification_id in (1, 2, 3):
        transport.send(message_to(listener.url, notification_id))
    assert len({port for *_rest, port in listener.received}) == 1


# --- bounded replies -----------------------------------------------------------


def test_a_huge_reply_is_read_only_to_the_limit(listen):
    listener = listen(huge_reply())
    sent = WebhookTransport(webhook_transport.public_only_pool(2)).send(message_to(listener.url))
    listener.answered.wait(30)

    # Read whole, all 50 MB would have been written; the listener stops
    # when the socket buffers between us are full and we hang up.
    assert listener.written < HUGE // 2
    assert len(sent.response) <= RESPONSE_KEPT


def test_the_body_read_is_the_limit(listen):
    listener = listen(huge_reply())
    response = webhook_transport.public_only_pool(1).request("POST", listener.url, body=b"{}", preload_content=False)
    assert len(webhook_transport.read_prefix(response)) == RESPONSE_READ_LIMIT
    assert response.closed


def test_a_chunked_reply_of_no_declared_length_is_read_only_to_the_limit(listen):
    listener = listen(endless_chunks)
    sent = WebhookTransport(webhook_transport.public_only_pool(2)).send(message_to(listener.url))
    listener.answered.wait(30)
    assert sent.status_code == 200
    assert listener.written < HUGE // 2
    assert sent.response == "C" * RESPONSE_KEPT


def test_after_a_reply_cut_short_the_next_send_gets_a_fresh_connection(listen):
    big = listen(huge_reply())
    transport = WebhookTransport(webhook_transport.public_only_pool(1))
    transport.send(message_to(big.url))
    big.answer = ok
    # The same host and port: an unread 50 MB left on a pooled connection
    # would be read as the next reply.
    second = transport.send(message_to(big.url))
    assert (second.status_code, second.response) == (200, "ok")
    assert len({port for *_rest, port in big.received}) == 2


def test_what_is_kept_of_a_reply_is_a_short_plain_text_excerpt(listen, webhook_only, make_shipment):
    listener = listen(huge_reply(status=500))
    point_brand_at(webhook_only, listener.url)

    notification = send_one_webhook(make_shipment())

    assert notification.state == State.QUEUED
    [attempt] = WebhookAttempt.objects.all()
    kept = attempt.response_body
    assert attempt.status_code == 500
    assert 0 < len(kept) <= RESPONSE_KEPT
    assert kept.startswith("alert(1) [31m internal admin page xxx")
    assert "<" not in kept and ">" not in kept
    assert all(char.isprintable() for char in kept)
    assert "AWS_SECRET_ACCESS_KEY" not in kept


def test_the_excerpt_drops_markup_and_control_characters():
    assert webhook_transport.excerpt(b"<p>Bad\x07 <b>signature</b></p>\n\n\x1b[0m") == "Bad signature [0m"
    assert webhook_transport.excerpt("é".encode() + b"\xff") == "é\ufffd"
    assert len(webhook_transport.excerpt(b"y" * 10_000)) == RESPONSE_KEPT


# --- queued retries follow the brand ------------------------------------------


def test_a_queued_retry_goes_to_the_brands_new_url_signed_with_its_new_secret(listen, webhook_only, make_shipment):
    old, new = listen(unavailable), listen()
    point_brand_at(webhook_only, old.url)
    notification = send_one_webhook(make_shipment())
    assert notification.state == State.QUEUED

    webhook_only.refresh_from_db()
    webhook_only.webhook_url, webhook_only.webhook_secret = new.url, NEW_SECRET
    webhook_only.save()
    notification = send_again(notification)

    assert notification.state == State.SENT
    assert len(old.received) == 1
    [(_path, headers, body, _port)] = new.received
    assert Webhook(NEW_SECRET).verify(body, headers)
    assert list(WebhookAttempt.objects.order_by("attempted_at", "pk").values_list("url", "succeeded")) == [
        (old.url, False),
        (new.url, True),
    ]


def test_a_queued_retry_fails_for_good_when_the_brand_removed_its_url(listen, webhook_only, make_shipment):
    old = listen(unavailable)
    point_brand_at(webhook_only, old.url)
    notification = send_one_webhook(make_shipment())

    point_brand_at(webhook_only, "")
    notification = send_again(notification)

    assert notification.state == State.FAILED
    assert notification.last_error == "The brand no longer has a webhook URL."
    assert len(old.received) == 1
