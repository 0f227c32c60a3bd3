"""A warm tracking page (and widget frame) served before Django's handler.

Django's ASGI handler and the middleware cost a warm page most of its time
(NOTES.md, "What a request costs"): a page that is one Redis read away is
answered here, with the headers Django's path gives it, built by Django's
own pieces (the CSP from settings.SECURE_CSP through build_policy, the
security headers from the same settings). Anything this path does not know
falls through to Django, which answers as always: a method other than GET
and HEAD, another path, an htmx request, a query other than ?lang= (on the
page, a new choice sets a cookie) and the frame's ?brand=, a cookie other
than the language's and CSRF's (a session: staff, messages), a Host Django
would refuse, a plain request that SECURE_SSL_REDIRECT would redirect, a
page not in the cache or past its expiry, a frame of another brand than
?brand= names.

A hot page is kept in this process too (pages.local_copy, dropped by the
hub's subscription), so that most warm answers make no Redis round trip.
tests/pages/test_fast.py fetches the same pages both ways and compares
them byte for byte. FAST_CACHED_PAGES=false turns it off.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.csp import CSP, build_policy

from . import cache as page_cache
from .counting import count_view_of
from .embed import _unstored
from .headers import ROBOTS
from .live.hub import hub
from .local_copy import Entry, valid_until
from .tracking import SUPPORTED_LANGUAGES, _accepted_language

PAGE_PATH = re.compile(r"^/(embed/)?t/([A-Za-z0-9_-]{16,64})/$")
_NONCE_SLOT = "fast-page-nonce-slot"
_NONCE_PLACEHOLDER = page_cache.NONCE_PLACEHOLDER.encode()
_CSRF_PLACEHOLDER = page_cache.CSRF_PLACEHOLDER.encode()
# The query each path knows: the page's language, and the frame's brand.
PAGE_QUERY = frozenset({"lang"})
FRAME_QUERY = frozenset({"lang", "brand"})


def enabled() -> bool:
    return settings.FAST_CACHED_PAGES and not settings.DISALLOWED_USER_AGENTS and not settings.USE_X_FORWARDED_HOST


@functools.lru_cache(maxsize=256)
def _host_allowed(host: str, allowed: tuple, debug: bool) -> bool:
    # Django's own rule (HttpRequest.get_host), DEBUG's localhost included.
    if debug and not allowed:
        allowed = (".localhost", "127.0.0.1", "[::1]")
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _is_secure(scope, headers: dict) -> bool:
    # Django's HttpRequest.scheme with SECURE_PROXY_SSL_HEADER.
    if settings.SECURE_PROXY_SSL_HEADER:
        name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = headers.get(name.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if value is not None:
            return value.decode("latin-1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


@functools.lru_cache(maxsize=256)
def _csp_template(config_key: str, frame_origins: tuple[str, ...] | None) -> bytes:
    """The site's CSP with a slot for the nonce; for a frame, with the
    brand's origins as frame-ancestors (pages.embed._frame_policy)."""
    config = settings.SECURE_CSP
    if frame_origins is not None:
        config = {**config, "frame-ancestors": list(frame_origins) or [CSP.NONE]}
    return build_policy(config, _NONCE_SLOT).encode()


def _headers(
    language: str, length: int, nonce: bytes, secure: bool, frame_origins: tuple[str, ...] | None
) -> list[tuple[bytes, bytes]]:
    """In the order Django's path sends them: the view's, then the
    middleware's on the way out (X-Frame-Options but on a frame,
    CommonMiddleware's Content-Length, the CSP, SecurityMiddleware's)."""
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-language", language.encode()),
        (b"vary", b"HX-Request, HX-Target, Accept-Language, Cookie"),
        (b"x-robots-tag", _ROBOTS),
    ]
    if frame_origins is None:
        headers.append((b"x-frame-options", settings.X_FRAME_OPTIONS.encode()))
    csp = _csp_template(repr(settings.SECURE_CSP), frame_origins)
    headers += [
        (b"content-length", str(length).encode()),
        (b"content-security-policy", csp.replace(_NONCE_SLOT_BYTES, nonce)),
    ]
    if settings.SECURE_HSTS_SECONDS and secure:
        sts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            sts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            sts += "; preload"
        headers.append((b"strict-transport-security", sts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    return headers


_ROBOTS = ROBOTS.encode()
_NONCE_SLOT_BYTES = _NONCE_SLOT.encode()


def _warm_page(token: str, variant: str) -> Entry | None:
    """The stored page, from this process's copy or else from Redis (then
    kept here while the hub's subscription holds); None if there is none
    still good."""
    hub.subscribe()
    now = time.time()
    copy = hub.pages
    key = page_cache.page_key(token, variant)
    entry = copy.get(key, now) if hub.listening.is_set() else None
    if entry is not None:
        return entry
    found, ttl = page_cache.lookup_with_ttl(token, variant)
    if found.html is None or found.expired:
        return None
    entry = Entry(found.html, found.language, valid_until(found.expires_at, ttl, now))
    # No await since the read: a change published after it reaches the hub
    # only after this, and drops it (pages.local_copy).
    if hub.listening.is_set() and _CSRF_PLACEHOLDER not in found.html:
        copy.put(token, key, entry)
    return entry


async def serve_cached_page(scope, send) -> bool:
    """Answer a warm tracking page or widget frame here and say True;
    False: Django answers."""
    method = scope["method"]
    if (method != "GET" and method != "HEAD") or not enabled():
        return False
    match = PAGE_PATH.match(scope["path"])
    if match is None:
        return False
    frame = match.group(1) is not None
    headers = dict(scope["headers"])
    if len(headers) != len(scope["headers"]) or b"hx-request" in headers:
        return False
    host = headers.get(b"host", b"").decode("latin-1")
    if not _host_allowed(host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG):
        return False
    secure = _is_secure(scope, headers)
    if settings.SECURE_SSL_REDIRECT and not secure:
        return False
    cookie_header = headers.get(b"cookie")
    cookies = parse_cookie(cookie_header.decode("latin-1")) if cookie_header else {}
    if cookies and set(cookies) - {settings.LANGUAGE_COOKIE_NAME, settings.CSRF_COOKIE_NAME}:
        return False
    query_string = scope.get("query_string")
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else {}
    if query and (
        set(query) - (FRAME_QUERY if frame else PAGE_QUERY)
        or len(query) != query_string.count(b"&") + 1  # a name twice
    ):
        return False
    asked = query.get("lang")
    cookie_language = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    if not frame and asked in SUPPORTED_LANGUAGES and asked != cookie_language:
        return False  # Django sets the language cookie
    # pages.tracking._explicit_language and the views' variants.
    chosen = asked or cookie_language or ""
    explicit = chosen if chosen in SUPPORTED_LANGUAGES else ""
    accepted = "" if explicit else _accepted_language(headers.get(b"accept-language", b"").decode("latin-1"))
    token = match.group(2)
    entry = _warm_page(token, f"{'embed-page' if frame else 'page'}:{explicit or '~' + accepted}")
    if entry is None:
        return False
    html, frame_origins = entry.html, None
    if frame:
        brand_slug, origins, html = _unstored(html)
        wanted_brand = query.get("brand")
        if wanted_brand is not None and wanted_brand != brand_slug:
            return False  # the frame's 404, framed for the brand named
        frame_origins = tuple(origins)
    if _CSRF_PLACEHOLDER in html:
        # A page with the customer's forms on it (the delivered page's
        # rating and report) needs this visitor's CSRF token and cookie:
        # Django's middleware gives both.
        return False
    if method == "GET" and settings.PAGE_VIEW_COUNTING:
        count_view_of(token)
    nonce = secrets.token_urlsafe(16).encode()
    body = html.replace(_NONCE_PLACEHOLDER, nonce)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": _headers(entry.language, len(body), nonce, secure, frame_origins),
        }
    )
    # Under HEAD the server sends no body, but the same Content-Length.
    await send({"type": "http.response.body", "body": body})
    return True
