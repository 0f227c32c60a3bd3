"""Brand webhooks: an HTTP POST signed per the Standard Webhooks spec, so
that any Standard Webhooks library verifies it."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from . import OutgoingMessage, Sent, TransportError

# An endpoint that answers 410 Gone has told us to stop for good; every other
# failure is retried for a day.
PERMANENT_STATUSES = frozenset({410})
RESPONSE_KEPT = 2000


TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# One client per process: building one loads the CA bundle (about 20 ms),
# more than the rest of a send. A forked worker builds its own, since a
# connection pool must not cross a fork.
_shared: tuple[int, httpx.Client] | None = None
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), httpx.Client(timeout=TIMEOUT, follow_redirects=False))
        return _shared[1]


class WebhookTransport:
    def __init__(self, client: httpx.Client | None = None):
        self.client = client or shared_client()

    def send(self, message: OutgoingMessage) -> Sent:
        if not message.signing_secret:
            raise TransportError("The brand has no webhook signing secret.", permanent=True)
        # The id stays the same on every retry of this notification, so the
        # brand's endpoint can tell a redelivery from a new event.
        msg_id = f"msg_notification_{message.notification_id}"
        now = datetime.now(UTC)
        secrets = [message.signing_secret, message.previous_signing_secret]
        try:
            # Standard Webhooks: several signatures, space-separated; a
            # receiver accepts the message if any one of them verifies.
            signature = " ".join(Webhook(secret).sign(msg_id, now, message.body) for secret in secrets if secret)
        except Exception as error:
            raise TransportError(f"Unusable webhook secret: {error}", permanent=True) from error
        headers = {
            "content-type": "application/json",
            "user-agent": "tracking-portal-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = self.client.post(message.to, content=message.body.encode(), headers=headers)
        except httpx.InvalidURL as error:
            raise TransportError(f"Invalid webhook URL: {error}", permanent=True) from error
        except httpx.HTTPError as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error
        body = response.text[:RESPONSE_KEPT]
        if 200 <= response.status_code < 300:
            return Sent(msg_id, status_code=response.status_code, response=body)
        raise TransportError(
            f"HTTP {response.status_code}",
            permanent=response.status_code in PERMANENT_STATUSES,
            status_code=response.status_code,
            response=body,
        )
