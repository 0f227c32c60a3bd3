"""Brand webhooks: an HTTP POST signed per the Standard Webhooks spec, so
that any Standard Webhooks library verifies it."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

import urllib3
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from . import OutgoingMessage, Sent, TransportError

# An endpoint that answers 410 Gone has told us to stop for good; every other
# failure is retried for a day.
PERMANENT_STATUSES = frozenset({410})
RESPONSE_KEPT = 2000


TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)

# One pool of keep-alive connections per process (urllib3 rather than httpx:
# half the CPU per request, which is most of a webhook's cost in the worker),
# with room for the sending threads and as many task threads besides, so
# that no connection is opened only to be thrown away. A forked worker builds
# its own, since a connection pool must not cross a fork.
_shared: tuple[int, urllib3.PoolManager] | None = None
_shared_lock = threading.Lock()


def shared_pool() -> urllib3.PoolManager:
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            size = 2 * settings.NOTIFICATION_SEND_THREADS
            pool = urllib3.PoolManager(maxsize=size, timeout=TIMEOUT, retries=False)
            _shared = (os.getpid(), pool)
        return _shared[1]


class WebhookTransport:
    def __init__(self, pool: urllib3.PoolManager | None = None):
        self.pool = pool or shared_pool()

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
            url = urllib3.util.parse_url(message.to)
        except urllib3.exceptions.LocationParseError as error:
            raise TransportError(f"Invalid webhook URL: {error}", permanent=True) from error
        if url.scheme not in ("http", "https") or not url.host:
            raise TransportError(f"Invalid webhook URL: {message.to!r} is not an http(s) address.", permanent=True)
        try:
            response = self.pool.request(
                "POST", message.to, body=message.body.encode(), headers=headers, redirect=False
            )
        except (urllib3.exceptions.LocationValueError, urllib3.exceptions.URLSchemeUnknown) as error:
            raise TransportError(f"Invalid webhook URL: {error}", permanent=True) from error
        except urllib3.exceptions.HTTPError as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error
        status_code = response.status
        body = response.data[: RESPONSE_KEPT * 4].decode("utf-8", "replace")[:RESPONSE_KEPT]
        if 200 <= status_code < 300:
            return Sent(msg_id, status_code=status_code, response=body)
        raise TransportError(
            f"HTTP {status_code}", permanent=status_code in PERMANENT_STATUSES, status_code=status_code, response=body
        )
