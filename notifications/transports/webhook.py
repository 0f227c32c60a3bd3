"""Brand webhooks: an HTTP POST signed per the Standard Webhooks spec, so
that any Standard Webhooks library verifies it."""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime

import urllib3
from django.conf import settings
from django.utils.html import strip_tags
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from shipments import outbound

from . import OutgoingMessage, Sent, TransportError

# An endpoint that answers 410 Gone has told us to stop for good; every other
# failure is retried for a day.
PERMANENT_STATUSES = frozenset({410})
# A reply is read this far and no further (a brand's endpoint answering
# 300 MB must not take a worker's memory), and only a short plain-text
# excerpt of it is kept, for the brand's staff to see in the attempt log.
RESPONSE_READ_LIMIT = 4096
RESPONSE_KEPT = 300


TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)

# One pool of keep-alive connections per process (urllib3 rather than httpx:
# less CPU per request, which is most of a webhook's cost in the worker; see
# bench/notify_latency.py and bench/RESULTS.md),
# with room for the sending threads and as many task threads besides, so
# that no connection is opened only to be thrown away. A forked worker builds
# its own, since a connection pool must not cross a fork.
_shared: tuple[int, urllib3.PoolManager] | None = None
_shared_lock = threading.Lock()


def shared_pool() -> urllib3.PoolManager:
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), public_only_pool(2 * settings.NOTIFICATION_SEND_THREADS))
        return _shared[1]


def public_only_pool(maxsize: int) -> urllib3.PoolManager:
    """Keep-alive connections, each made only to an address the outbound
    rule lets through; redirects and retries are the caller's (none)."""
    pool = urllib3.PoolManager(maxsize=maxsize, timeout=TIMEOUT, retries=False)
    pool.pool_classes_by_scheme = {"http": PublicOnlyHTTPConnectionPool, "https": PublicOnlyHTTPSConnectionPool}
    return pool


class _PublicOnly:
    """A connection that is made only to addresses the outbound rule lets
    through (shipments/outbound.py). The host is resolved here, every answer
    checked, and the socket connected to a checked address by number, so
    that a DNS answer that changed since the URL was saved (or changes
    between two look-ups) is caught; the Host header and the TLS server name
    still come from the URL. A keep-alive connection that is reused was
    checked when it was made."""

    def _new_conn(self) -> socket.socket:
        if outbound.private_networks_allowed():
            return super()._new_conn()
        name = self._dns_host
        try:
            addresses = outbound.resolve_public(name, self.port)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        failure = None
        for address in addresses:
            self._dns_host = address
            try:
                sock = super()._new_conn()
            except (NewConnectionError, ConnectTimeoutError) as error:
                failure = error
                continue
            finally:
                self._dns_host = name
            try:
                # Not a byte is sent before the peer itself is checked.
                outbound.check_address(sock.getpeername()[0])
            except outbound.RefusedDestination:
                sock.close()
                raise
            return sock
        raise failure


class PublicOnlyHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class PublicOnlyHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class PublicOnlyHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = PublicOnlyHTTPConnection


class PublicOnlyHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = PublicOnlyHTTPSConnection


def excerpt(raw: bytes) -> str:
    """What of a reply is kept: plain, printable text on one line, short.
    Markup is dropped rather than escaped, since no one needs it to see why
    an endpoint refused."""
    text = raw.decode("utf-8", "replace")
    if "<" in text:
        text = strip_tags(text)
    text = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(text.split())[:RESPONSE_KEPT]


def read_prefix(response: urllib3.BaseHTTPResponse) -> bytes:
    """The first RESPONSE_READ_LIMIT bytes of a reply, as sent (a compressed
    one is not inflated, so it cannot grow past the limit). A connection
    whose reply was read to its end goes back to the pool; one with more
    left is closed rather than drained, and its place in the pool given
    back, so that the next send opens (and checks) a fresh one."""
    try:
        return response.read(RESPONSE_READ_LIMIT, decode_content=False)
    except urllib3.exceptions.HTTPError:
        # The reply broke off: its status is what counts.
        return b""
    finally:
        if not response.closed:
            response.close()
        response.release_conn()


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
                "POST",
                message.to,
                body=message.body.encode(),
                headers=headers,
                redirect=False,
                preload_content=False,
            )
        except outbound.RefusedDestination as refused:
            raise TransportError(refused.message, permanent=True) from None
        except (urllib3.exceptions.LocationValueError, urllib3.exceptions.URLSchemeUnknown) as error:
            raise TransportError(f"Invalid webhook URL: {error}", permanent=True) from error
        except urllib3.exceptions.HTTPError as error:
            raise TransportError(f"{type(error).__name__}: {error}") from error
        status_code = response.status
        body = excerpt(read_prefix(response))
        if 200 <= status_code < 300:
            return Sent(msg_id, status_code=status_code, response=body)
        raise TransportError(
            f"HTTP {status_code}", permanent=status_code in PERMANENT_STATUSES, status_code=status_code, response=body
        )
