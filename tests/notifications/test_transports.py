"""Each transport against a fake of its provider at the edge: Twilio's HTTP
client, a local HTTP server for webhooks, a local SMTP server for email."""

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks.webhooks import Webhook
from twilio.http import HttpClient
from twilio.http.response import Response

from notifications.transports import OutgoingMessage, TransportError, get_transport
from notifications.transports.email import DjangoEmailTransport
from notifications.transports.sms import ConsoleSmsTransport, MemorySmsTransport, TwilioSmsTransport
from notifications.transports.webhook import WebhookTransport

from .conftest import free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def sms(text="Your parcel is out for delivery", to="+447700900123"):
    return OutgoingMessage(notification_id=7, channel="sms", to=to, body=text)


# --- SMS -------------------------------------------------------------------


def test_the_console_prints_the_text_with_its_segments(capsys):
    sent = ConsoleSmsTransport().send(sms("Hello “there” — it’s here"))
    out = capsys.readouterr().out
    assert "SMS to +447700900123 (1 segment, GSM-7)" in out
    assert 'Hello "there" - it\'s here' in out
    assert sent.provider_message_id in out


def test_memory_keeps_what_was_sent():
    MemorySmsTransport.outbox.clear()
    MemorySmsTransport().send(sms())
    assert [m.body for m in MemorySmsTransport.outbox] == ["Your parcel is out for delivery"]


def test_the_backend_comes_from_settings(settings):
    settings.SMS_BACKEND = "console"
    assert isinstance(get_transport("sms"), ConsoleSmsTransport)
    settings.SMS_BACKEND = "memory"
    assert isinstance(get_transport("sms"), MemorySmsTransport)


class FakeTwilioHttp(HttpClient):
    """Twilio's HTTP client, replaced at the edge: what the library would
    have sent over the wire is recorded and a canned API answer returned."""

    def __init__(self, status=201, body=None, exception=None):
        super().__init__(logger=None, is_async=False)
        self.status, self.body, self.exception = status, body, exception
        self.requests = []

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, **kwargs):
        self.requests.append({"method": method, "url": url, "data": data, "auth": auth})
        if self.exception:
            raise self.exception
        return Response(self.status, json.dumps(self.body or {}), headers={})


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "a" * 32
    settings.TWILIO_AUTH_TOKEN = "secret-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.PUBLIC_BASE_URL = "https://tracking.example.com"
    return settings


def test_twilio_sends_through_the_messages_api(twilio_settings):
    http = FakeTwilioHttp(body={"sid": "SM" + "1" * 32, "status": "queued"})
    sent = TwilioSmsTransport(http_client=http).send(sms("Out for delivery – track it…"))
    assert sent.provider_message_id == "SM" + "1" * 32
    [request] = http.requests
    assert request["method"] == "POST"
    assert request["url"] == f"https://api.twilio.com/2010-04-01/Accounts/AC{'a' * 32}/Messages.json"
    assert request["auth"] == ("AC" + "a" * 32, "secret-token")
    assert request["data"]["To"] == "+447700900123"
    assert request["data"]["From"] == "+15005550006"
    assert request["data"]["Body"] == "Out for delivery - track it..."  # kept to GSM-7
    assert request["data"]["StatusCallback"] == "https://tracking.example.com/hooks/twilio/status/"


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (400, 21211, True),
        (400, 21610, True),
        (429, 20429, False),
        (500, None, False),
        (503, None, False),
        (401, 20003, False),
    ],
)
def test_twilio_errors_are_sorted_into_permanent_and_transient(twilio_settings, status, code, permanent):
    http = FakeTwilioHttp(status=status, body={"code": code, "message": "nope", "status": status})
    with pytest.raises(TransportError) as raised:
        TwilioSmsTransport(http_client=http).send(sms())
    assert raised.value.permanent is permanent
    assert raised.value.status_code == status


def test_twilio_unreachable_is_transient(twilio_settings):
    http = FakeTwilioHttp(exception=requests.ConnectionError("connection refused"))
    with pytest.raises(TransportError) as raised:
        TwilioSmsTransport(http_client=http).send(sms())
    assert raised.value.permanent is False


def test_twilio_unconfigured_says_so(settings):
    settings.TWILIO_ACCOUNT_SID = ""
    with pytest.raises(TransportError, match="not configured"):
        TwilioSmsTransport()


# --- webhooks --------------------------------------------------------------


class FakeEndpoint:
    """A brand's webhook endpoint on 127.0.0.1, answering from a script."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.received = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                endpoint.received.append((self.path, dict(self.headers), body))
                status = endpoint.answers.pop(0) if endpoint.answers else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/hooks/parcels"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def hook(url, body='{"type":"shipment.status_changed"}'):
    return OutgoingMessage(notification_id=42, channel="webhook", to=url, body=body, signing_secret=SECRET)


def test_webhooks_are_signed_so_a_standard_webhooks_library_verifies_them():
    with FakeEndpoint([200]) as endpoint:
        sent = WebhookTransport().send(hook(endpoint.url))
    [(path, headers, body)] = endpoint.received
    assert path == "/hooks/parcels"
    assert Webhook(SECRET).verify(body, headers) == {"type": "shipment.status_changed"}
    assert headers["webhook-id"] == "msg_notification_42" == sent.provider_message_id
    assert sent.status_code == 200


def test_during_a_rotation_both_secrets_verify():
    old_secret = "whsec_" + "b" * 32
    message = OutgoingMessage(
        notification_id=5,
        channel="webhook",
        to="",
        body='{"a":1}',
        signing_secret=SECRET,
        previous_signing_secret=old_secret,
    )
    with FakeEndpoint([200]) as endpoint:
        WebhookTransport().send(OutgoingMessage(**{**message.__dict__, "to": endpoint.url}))
    [(_path, headers, body)] = endpoint.received
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(SECRET).verify(body, headers) == {"a": 1}
    assert Webhook(old_secret).verify(body, headers) == {"a": 1}


def test_a_resend_keeps_the_webhook_id():
    with FakeEndpoint([500, 200]) as endpoint:
        with pytest.raises(TransportError):
            WebhookTransport().send(hook(endpoint.url))
        WebhookTransport().send(hook(endpoint.url))
    assert [h["webhook-id"] for _p, h, _b in endpoint.received] == ["msg_notification_42"] * 2


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (404, False), (429, False), (410, True)])
def test_webhook_failures(status, permanent):
    with FakeEndpoint([status]) as endpoint, pytest.raises(TransportError) as raised:
        WebhookTransport().send(hook(endpoint.url))
    assert (raised.value.status_code, raised.value.permanent) == (status, permanent)


def test_a_webhook_endpoint_that_is_down_is_transient():
    with pytest.raises(TransportError) as raised:
        WebhookTransport().send(hook(f"http://127.0.0.1:{free_port()}/gone"))
    assert raised.value.permanent is False


@pytest.mark.parametrize("url", ["ftp://hooks.example/parcels", "http://", "hooks.example/no-scheme"])
def test_a_webhook_url_that_cannot_work_fails_for_good(url):
    with pytest.raises(TransportError) as raised:
        WebhookTransport().send(hook(url))
    assert raised.value.permanent is True
    assert "Invalid webhook URL" in raised.value.message


def test_a_webhook_without_a_secret_is_not_sent():
    message = OutgoingMessage(notification_id=1, channel="webhook", to="http://127.0.0.1:1/", body="{}")
    with pytest.raises(TransportError) as raised:
        WebhookTransport().send(message)
    assert raised.value.permanent is True


# --- email -----------------------------------------------------------------


class FakeSmtp:
    """A small SMTP server on 127.0.0.1 that takes mail, or refuses it with
    the reply given."""

    def __init__(self, rcpt_reply="250 OK"):
        self.messages = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.say("220 fake ESMTP")
                recipients, data = [], None
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.say("250 fake")
                    elif verb == "MAIL":
                        self.say("250 OK")
                    elif verb == "RCPT":
                        recipients.append(command)
                        self.say(rcpt_reply)
                    elif verb == "DATA":
                        self.say("354 go on")
                        chunks = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            chunks.append(chunk)
                        data = b"".join(chunks)
                        fake.messages.append((recipients, data))
                        self.say("250 queued")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("250 OK")

            def say(self, text):
                self.wfile.write(text.encode() + b"\r\n")

        self.port = free_port()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def email_message():
    return OutgoingMessage(
        notification_id=3,
        channel="email",
        to="ada@example.com",
        subject="Your parcel has been delivered",
        body="Hi Ada, it is here.\n\nUnsubscribe: https://t.example/unsubscribe/x/",
        html="<p>Hi Ada, it is <b>here</b>.</p>",
        headers={"List-Unsubscribe": "<https://t.example/unsubscribe/x/>"},
    )


@pytest.fixture
def smtp_mailer(settings):
    def use(server):
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": server.port, "timeout": 5},
            }
        }

    return use


def test_email_goes_out_over_smtp_with_text_and_html(smtp_mailer):
    with FakeSmtp() as server:
        smtp_mailer(server)
        sent = DjangoEmailTransport().send(email_message())
    [(recipients, data)] = server.messages
    assert [r.split(":", 1)[1] for r in recipients] == ["<ada@example.com>"]
    raw = data.decode()
    assert "Subject: Your parcel has been delivered" in raw
    assert "multipart/alternative" in raw
    assert "text/plain" in raw and "text/html" in raw
    assert "List-Unsubscribe: <https://t.example/unsubscribe/x/>" in raw
    assert sent.provider_message_id in raw


@pytest.mark.parametrize(("reply", "permanent"), [("550 no such user", True), ("451 try later", False)])
def test_smtp_refusals(smtp_mailer, reply, permanent):
    with FakeSmtp(rcpt_reply=reply) as server:
        smtp_mailer(server)
        with pytest.raises(TransportError) as raised:
            DjangoEmailTransport().send(email_message())
    assert raised.value.permanent is permanent


def test_a_mail_server_that_is_down_is_transient(settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2},
        }
    }
    with pytest.raises(TransportError) as raised:
        DjangoEmailTransport().send(email_message())
    assert raised.value.permanent is False
