"""SMS transports: the console (development), memory (tests) and Twilio."""

from __future__ import annotations

import sys
import threading
import uuid

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ..rules import prepare_sms
from . import OutgoingMessage, Sent, TransportError


class ConsoleSmsTransport:
    """Prints each SMS, so that `make run` shows what would be sent."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, message: OutgoingMessage) -> Sent:
        sms = prepare_sms(message.body)
        provider_id = f"console-{uuid.uuid4().hex[:12]}"
        self.stream.write(
            f"--- SMS to {message.to} ({sms.segments} segment{'s' if sms.segments != 1 else ''}, {sms.encoding})"
            f" [{provider_id}]\n{sms.text}\n---\n"
        )
        self.stream.flush()
        return Sent(provider_id)


class MemorySmsTransport:
    """Keeps sent messages in ``outbox`` (process-wide), like Django's
    locmem email backend. Tests clear it between runs."""

    outbox: list[OutgoingMessage] = []
    _lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> Sent:
        with self._lock:
            type(self).outbox.append(message)
        return Sent(f"memory-{uuid.uuid4().hex[:12]}")


# Twilio error codes that no retry can fix: the number cannot take SMS, the
# recipient opted out with the carrier, the text is refused.
TWILIO_PERMANENT_CODES = frozenset({21211, 21407, 21408, 21421, 21610, 21612, 21614, 21617, 21635, 30004, 30005})
TWILIO_OPTED_OUT = 21610


class TwilioSmsTransport:
    """Sends through Twilio's Messages API with the official client. Twilio
    calls /hooks/twilio/status/ back with delivery receipts."""

    timeout_seconds = 10.0

    def __init__(self, http_client=None):
        if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER):
            raise TransportError(
                "Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER."
            )
        self.client = Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=http_client or TwilioHttpClient(timeout=self.timeout_seconds),
        )

    def send(self, message: OutgoingMessage) -> Sent:
        sms = prepare_sms(message.body)
        try:
            created = self.client.messages.create(
                to=message.to,
                from_=settings.TWILIO_FROM_NUMBER,
                body=sms.text,
                status_callback=settings.PUBLIC_BASE_URL + reverse("notifications:twilio_status"),
            )
        except TwilioRestException as error:
            permanent = error.code in TWILIO_PERMANENT_CODES or (
                400 <= error.status < 500 and error.status not in (401, 403, 408, 429)
            )
            raise TransportError(
                f"Twilio {error.status} (code {error.code}): {error.msg}",
                permanent=permanent,
                status_code=error.status,
                response=str(error.code or ""),
            ) from error
        except (requests.RequestException, TwilioException) as error:
            raise TransportError(f"Twilio unreachable: {error}") from error
        return Sent(created.sid)
