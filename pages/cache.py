"""Rendered tracking pages kept in Redis, so that a warm page costs one
round trip and no database query.

A page is stored under its token and language variant, tagged with the
page's *epoch*: a per-token counter in Redis that every change the page would
show bumps (an event, proof of delivery, a customer action, the driver
moving, a stop ahead being done). A reader fetches the epoch and the page in
one MGET and uses the page only if the tags match. A render reads the epoch
*before* it reads the database, so a change that lands mid-render leaves a
page tagged with an older epoch, which the next reader throws away.

Nothing that belongs to one visitor is stored: the CSP nonce is a
placeholder, filled in per response, and the customer's forms (which carry a
CSRF token) are not part of the page but loaded beside it, uncached.

Without REDIS_URL nothing is cached: the embedded default renders every time,
which is always correct whatever process made the change.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.crypto import salted_hmac
from redis import RedisError

from tracking_portal import redis as redis_factory

# Short, so that a change whose invalidation was lost (Redis briefly away)
# shows within minutes all the same.
PAGE_TTL_SECONDS = 600
# A page showing the driver is not made stale by the driver's pings (open
# pages get each position over their stream): it is kept this long at most,
# so that a new visitor's page shows a position no older than this, well
# inside the minute its caption ("Driver's position at 09:41") states.
POSITION_MAX_AGE_SECONDS = 30
# Longer than any page lives, so a page never outlives the epoch it was
# tagged with; refreshed on every bump.
EPOCH_TTL_SECONDS = 3 * 86400

# Stable across processes (pages rendered by one are served by another) and
# unguessable without SECRET_KEY, so carrier text can't smuggle one in.
NONCE_PLACEHOLDER = "n" + salted_hmac("page-cache-nonce", "placeholder", algorithm="sha256").hexdigest()[:30]
# The same for the CSRF token of the forms on a delivered page (the rating,
# a problem): each response gets its visitor's own token in its place.
CSRF_PLACEHOLDER = "c" + salted_hmac("page-cache-csrf", "placeholder", algorithm="sha256").hexdigest()[:30]


def shared_redis() -> redis_factory.GuardedRedis | None:
    """The process's one shared redis-py client (tracking_portal.redis), or
    None without REDIS_URL. Django's stock RedisCache opens a connection per
    request under ASGI; one shared client doesn't.

    After Redis fails it is None for a few seconds too (the factory's outage
    guard): pages are rendered and changes announced in this process only,
    as without Redis, rather than each waiting for its own timeout."""
    return redis_factory.shared_client()


def _epoch_key(token: str) -> str:
    return f"tp:epoch:{token}"


def page_key(token: str, variant: str) -> str:
    return f"tp:page:{token}:{variant}"


@dataclass(frozen=True)
class Lookup:
    """What one MGET found: the current epoch, and the stored page if it is
    still current."""

    epoch: bytes
    html: bytes | None = None
    language: str = ""
    expires_at: float = 0.0

    @property
    def expired(self) -> bool:
        return bool(self.expires_at) and time.time() >= self.expires_at


_NO_CACHE = Lookup(epoch=b"")


def lookup(token: str, variant: str) -> Lookup:
    client = shared_redis()
    if client is None:
        return _NO_CACHE
    try:
        epoch, stored = client.mget(_epoch_key(token), page_key(token, variant))
    except RedisError:
        return _NO_CACHE
    return _found(epoch, stored)


def lookup_with_ttl(token: str, variant: str) -> tuple[Lookup, int]:
    """lookup(), and in the same round trip the milliseconds Redis has left
    on the stored page (PTTL: below zero when there is none), so that a
    copy of it (pages.local_copy) lives no longer than it."""
    client = shared_redis()
    if client is None:
        return _NO_CACHE, -2
    key = page_key(token, variant)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.mget(_epoch_key(token), key)
        pipe.pttl(key)
        (epoch, stored), ttl = pipe.execute()
    except RedisError:
        return _NO_CACHE, -2
    return _found(epoch, stored), ttl


def _found(epoch: bytes | None, stored: bytes | None) -> Lookup:
    epoch = epoch or b"0"
    if stored:
        header, _, html = stored.partition(b"\n")
        tag, language, expires_at = header.split(b"|")
        if tag == epoch:
            return Lookup(epoch=epoch, html=html, language=language.decode(), expires_at=float(expires_at))
    return Lookup(epoch=epoch)


def events_url(page_url: str, found: Lookup, *, card: str = "") -> str:
    """The stream a page rendered after ``found`` listens on: it names the
    epoch the page was rendered at, so that the stream can tell the page at
    once whether anything moved before it connected (pages.live.stream),
    and a page that is current loads nothing more when its stream opens.
    ``card``: the language of a page that takes its new status card from
    the stream when only its expected times move."""
    url = f"{page_url}events/?since={found.epoch.decode()}"
    return f"{url}&card={card}" if card else url


def is_current(token: str, since: str | None) -> bool:
    """Whether the page's epoch is still ``since``; False whenever that
    cannot be known (no Redis, Redis away, no epoch given)."""
    client = shared_redis()
    if client is None or not since:
        return False
    try:
        epoch = client.get(_epoch_key(token)) or b"0"
    except RedisError:
        return False
    return epoch.decode() == since


def store(token: str, variant: str, found: Lookup, *, html: str, language: str, expires_at: float) -> None:
    """Keep a page rendered after ``found`` was looked up, tagged with the
    epoch seen then."""
    client = shared_redis()
    if client is None or not found.epoch:
        return
    value = found.epoch + f"|{language}|{expires_at}\n".encode() + html.encode()
    # A page that could not be kept is simply rendered again next time.
    with contextlib.suppress(RedisError):
        client.set(page_key(token, variant), value, ex=PAGE_TTL_SECONDS)


def invalidate(tokens: Iterable[str], pipe=None) -> None:
    """Make every stored page of these tokens stale; with ``pipe``, add the
    commands to that pipeline for its owner to run in the same round trip.

    Only pages.live.hub.publish calls it in the portal: the message it
    publishes with it is what drops each process's local copy of the page
    (pages.local_copy), which never asks Redis for the epoch."""
    client = shared_redis()
    tokens = list(tokens)
    if client is None or not tokens:
        return
    own = pipe is None
    if own:
        pipe = client.pipeline(transaction=False)
    for token in tokens:
        pipe.incr(_epoch_key(token))
        pipe.expire(_epoch_key(token), EPOCH_TTL_SECONDS)
    if own:
        pipe.execute()
