"""Transports: how a message leaves the portal, one interface for all.

``send(message)`` returns the provider's id for the message, or raises
TransportError; ``permanent=True`` means retrying cannot help (a bad number,
an endpoint that is gone). Which class serves a channel is a setting
(SMS_BACKEND for SMS, MAILERS for email), like Django's email backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False, status_code: int | None = None, response: str = ""):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status_code = status_code
        self.response = response


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: int
    channel: str
    to: str
    body: str
    subject: str = ""
    html: str = ""
    # For email: the sender's display name (the brand's) and where replies go.
    from_name: str = ""
    reply_to: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # For webhooks: the brand's Standard Webhooks signing secret, and during
    # a rotation the previous one, so that endpoints not yet updated verify.
    signing_secret: str = ""
    previous_signing_secret: str = ""


@dataclass(frozen=True)
class Sent:
    provider_message_id: str
    status_code: int | None = None
    response: str = ""


class Transport(Protocol):
    def send(self, message: OutgoingMessage) -> Sent: ...


SMS_BACKENDS = {
    "console": "notifications.transports.sms.ConsoleSmsTransport",
    "memory": "notifications.transports.sms.MemorySmsTransport",
    "twilio": "notifications.transports.sms.TwilioSmsTransport",
}


def get_transport(channel: str) -> Transport:
    if channel == "sms":
        backend = settings.SMS_BACKEND
        return import_string(SMS_BACKENDS.get(backend, backend))()
    if channel == "email":
        from .email import DjangoEmailTransport

        return DjangoEmailTransport()
    if channel == "webhook":
        from .webhook import WebhookTransport

        return WebhookTransport()
    raise ValueError(f"No transport for channel {channel!r}.")
