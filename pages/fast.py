"""A warm tracking page (and widget frame) served before Django's handler.

Django's ASGI handler and the middleware cost a warm page most of its time
(NOTES.md, "What a request costs"): a page that is one Redis read away is
answered here, with the headers Django's path gives it, built by Django's
own pieces (the CSP from settings.SECURE_CSP through build_policy, the
security headers from the same settings). Anything this path does not know
falls through to Django, which answers as always: a method other than GET
and HEAD, another path, an htmx request, a request with a body, a query other than ?lang= (on the
page, a new choice sets a cookie) and the frame's ?brand=, a cookie other
than the language's and CSRF's (a session: staff, messages), a Host Django
would refuse, a plain request that SECURE_SSL_REDIRECT would redirect, a
stored page past its expiry, a frame not in the cache or of another brand
than ?brand= names. A tracking page not in the cache is rendered and kept
here by the view's own code (in a thread), then answered as a warm one;
where the view would say something else (404, 410, 503) Django answers.

A hot page is kept in this process too (pages.local_copy, dropped by the
hub's subscription), so that most warm answers make no Redis round trip.
tests/pages/test_fast.py fetches the same pages both ways and compares
them byte for byte. FAST_CACHED_PAGES=false turns it off.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from base64 import urlsafe_b64encode
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.signals import setting_changed
from django.db import OperationalError, connections
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.csp import CSP, build_policy

from . import cache as page_cache
from .counting import count_view_of
from .embed import _unstored
from .headers import ROBOTS
from .live.hub import hub
from .local_copy import Entry, valid_until
from .tracking import NO_SUCH_PAGE, SUPPORTED_LANGUAGES, _accepted_language, render_cold_page
from .unavailable import DATABASE_AWAY

PAGE_PATH = re.compile(r"^/(embed/)?t/([A-Za-z0-9_-]{16,64})/$")
_NONCE_SLOT = "fast-page-nonce-slot"
_NONCE_PLACEHOLDER = page_cache.NONCE_PLACEHOLDER.encode()
_CSRF_PLACEHOLDER = page_cache.CSRF_PLACEHOLDER.encode()
# The query each path knows: the page's language, and the frame's brand.
PAGE_QUERY = frozenset({"lang"})
FRAME_QUERY = frozenset({"lang", "brand"})
# Past this many hosts or header sets seen, the memo starts again.
MEMO_SIZE = 1024


@dataclass(slots=True)
class _Config:
    """What the fast path reads of the settings, read once rather than per
    request (16 lookups through LazySettings and a repr of SECURE_CSP were a
    fifth of its time, bench/RESULTS.md "Warm page before Django's handler");
    made again when a setting changes (tests)."""

    enabled: bool
    allowed_hosts: tuple
    debug: bool
    proxy_ssl_header: tuple[bytes, str] | None
    ssl_redirect: bool
    language_cookie: str
    known_cookies: frozenset
    counting: bool
    hosts: dict[str, bool] = field(default_factory=dict)
    header_sets: dict[tuple, tuple] = field(default_factory=dict)


_config: _Config | None = None


def _current() -> _Config:
    global _config
    config = _config
    if config is None:
        proxy = settings.SECURE_PROXY_SSL_HEADER
        config = _config = _Config(
            enabled=settings.FAST_CACHED_PAGES
            and not settings.DISALLOWED_USER_AGENTS
            and not settings.USE_X_FORWARDED_HOST,
            allowed_hosts=tuple(settings.ALLOWED_HOSTS),
            debug=settings.DEBUG,
            proxy_ssl_header=(
                (proxy[0].removeprefix("HTTP_").lower().replace("_", "-").encode(), proxy[1]) if proxy else None
            ),
            ssl_redirect=settings.SECURE_SSL_REDIRECT,
            language_cookie=settings.LANGUAGE_COOKIE_NAME,
            known_cookies=frozenset({settings.LANGUAGE_COOKIE_NAME, settings.CSRF_COOKIE_NAME}),
            counting=settings.PAGE_VIEW_COUNTING,
        )
    return config


def _forget_config(**kwargs) -> None:
    global _config
    _config = None


setting_changed.connect(_forget_config, dispatch_uid="pages.fast.config")


def enabled() -> bool:
    return _current().enabled


def _host_allowed(config: _Config, host: str) -> bool:
    allowed = config.hosts.get(host)
    if allowed is None:
        # Django's own rule (HttpRequest.get_host), DEBUG's localhost included.
        hosts = config.allowed_hosts
        if config.debug and not hosts:
            hosts = (".localhost", "127.0.0.1", "[::1]")
        domain, _port = split_domain_port(host)
        allowed = bool(domain) and validate_host(domain, hosts)
        if len(config.hosts) >= MEMO_SIZE:
            config.hosts.clear()
        config.hosts[host] = allowed
    return allowed


def _is_secure(config: _Config, scope, headers: dict) -> bool:
    # Django's HttpRequest.scheme with SECURE_PROXY_SSL_HEADER.
    if config.proxy_ssl_header is not None:
        name, secure_value = config.proxy_ssl_header
        value = headers.get(name)
        if value is not None:
            return value.decode("latin-1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "https"


def _header_set(config: _Config, language: str, secure: bool, frame_origins: tuple[str, ...] | None) -> tuple:
    """The answer's headers but Content-Length and the nonce, in the order
    Django's path sends them: the view's, then the middleware's on the way
    out (X-Frame-Options but on a frame, CommonMiddleware's Content-Length,
    the CSP, SecurityMiddleware's). As (before the length, the CSP cut at
    the nonce's places, after the CSP)."""
    key = (language, secure, frame_origins)
    made = config.header_sets.get(key)
    if made is not None:
        return made
    before = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-language", language.encode()),
        (b"vary", b"HX-Request, HX-Target, Accept-Language, Cookie"),
        (b"x-robots-tag", ROBOTS.encode()),
    ]
    if frame_origins is None:
        before.append((b"x-frame-options", settings.X_FRAME_OPTIONS.encode()))
    csp_config = settings.SECURE_CSP
    if frame_origins is not None:
        # pages.embed._frame_policy: the brand's origins as frame-ancestors.
        csp_config = {**csp_config, "frame-ancestors": list(frame_origins) or [CSP.NONE]}
    csp = tuple(build_policy(csp_config, _NONCE_SLOT).encode().split(_NONCE_SLOT.encode()))
    after = []
    if settings.SECURE_HSTS_SECONDS and secure:
        sts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            sts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            sts += "; preload"
        after.append((b"strict-transport-security", sts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        after.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        after.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    made = (tuple(before), csp, tuple(after))
    if len(config.header_sets) >= MEMO_SIZE:
        config.header_sets.clear()
    config.header_sets[key] = made
    return made


@dataclass(frozen=True, slots=True)
class Ready:
    """A stored page as this path answers it: cut at the nonce's places, the
    frame's first line read, whether it carries the customer's forms."""

    parts: tuple[bytes, ...]
    language: str
    forms: bool
    brand_slug: str = ""
    frame_origins: tuple[str, ...] | None = None


def _ready(html: bytes, language: str, frame: bool) -> Ready:
    brand_slug, origins = "", None
    if frame:
        brand_slug, listed, html = _unstored(html)
        origins = tuple(listed)
    parts = tuple(html.split(_NONCE_PLACEHOLDER))
    return Ready(parts, language, _CSRF_PLACEHOLDER in html, brand_slug, origins)


def _warm_page(token: str, variant: str, frame: bool) -> Ready | None:
    """The stored page, from this process's copy or else from Redis (then
    kept here while the hub's subscription holds); None if there is none
    still good."""
    hub.subscribe()
    now = time.time()
    copy = hub.pages
    key = page_cache.page_key(token, variant)
    listening = hub.listening.is_set()
    entry = copy.get(key, now) if listening else None
    if entry is not None:
        return entry.page
    found, ttl = page_cache.lookup_with_ttl(token, variant)
    if found.html is None or found.expired:
        return None
    ready = _ready(found.html, found.language, frame)
    # No await since the read: a change published after it reaches the hub
    # only after this, and drops it (pages.local_copy).
    if listening:
        copy.put(token, key, Entry(ready, len(found.html), valid_until(found.expires_at, ttl, now)))
    return ready


# Threads of this process for cold pages, their own (the loop's default
# executor renders for the live streams, which cold pages must not starve);
# more cold pages at once wait for one. Sending the overflow to Django's
# handler instead made a rush of first opens ten times slower there
# (bench/RESULTS.md, "Morning rush").
COLD_RENDER_THREADS = 4
# After the database was found away, cold pages are 503 at once for this
# long, rather than each holding a thread for the pool's timeout.
DATABASE_AWAY_SECONDS = 2.0
_database_away: tuple[float, str] = (0.0, "")
_pool: ThreadPoolExecutor | None = None


def _cold_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(COLD_RENDER_THREADS, "cold-page")
    return _pool


def _render_cold(token: str, variant: str, explicit: str, accepted: str) -> tuple[bytes, str] | str | None:
    """render_cold_page's answer, or the database's error as text."""
    try:
        return render_cold_page(token, variant, explicit, accepted)
    except OperationalError as exc:
        # The database away: what Django's view is told to answer at once
        # (503, pages.unavailable) rather than wait for the pool again.
        return str(exc) or "database unavailable"
    except Exception:
        # Django's view renders it again and answers as always.
        return None
    finally:
        # Outside any request: nothing else hands the connection back.
        connections.close_all()


async def _cold_page(scope, token: str, variant: str, explicit: str, accepted: str) -> Ready | None:
    """A tracking page no one has opened since it changed, rendered and
    kept by the view's own code (pages.tracking.render_cold_page) in a
    thread, then answered as a warm one: a first visit does not pay for
    Django's handler and middleware either. None: Django answers (no such
    page, an expired link, the database away: the scope then says which of
    the first and the last it was)."""
    global _database_away
    away_until, why = _database_away
    if time.monotonic() < away_until:
        scope[DATABASE_AWAY] = why
        return None
    rendered = await asyncio.get_running_loop().run_in_executor(
        _cold_pool(), _render_cold, token, variant, explicit, accepted
    )
    if rendered == NO_SUCH_PAGE:
        # Django's 404, without a second look for what is not there.
        scope[NO_SUCH_PAGE] = True
        return None
    if isinstance(rendered, str):
        scope[DATABASE_AWAY] = rendered
        _database_away = (time.monotonic() + DATABASE_AWAY_SECONDS, rendered)
        return None
    if rendered is None:
        return None
    html, language = rendered
    return _ready(html, language, frame=False)


def _nonce() -> bytes:
    # Django's (django.utils.csp.generate_nonce: token_urlsafe(16)), as bytes.
    return urlsafe_b64encode(os.urandom(16)).rstrip(b"=")


async def serve_cached_page(scope, send) -> bool:
    """Answer a warm tracking page or widget frame here and say True;
    False: Django answers."""
    method = scope["method"]
    if method != "GET" and method != "HEAD":
        return False
    config = _current()
    if not config.enabled:
        return False
    match = PAGE_PATH.match(scope["path"])
    if match is None:
        return False
    frame = match.group(1) is not None
    headers = dict(scope["headers"])
    if len(headers) != len(scope["headers"]) or b"hx-request" in headers:
        return False
    if b"content-length" in headers or b"transfer-encoding" in headers:
        return False  # a body: the limit's to judge (tracking_portal/body_limit.py)
    if not _host_allowed(config, headers.get(b"host", b"").decode("latin-1")):
        return False
    secure = _is_secure(config, scope, headers)
    if config.ssl_redirect and not secure:
        return False
    cookie_header = headers.get(b"cookie")
    cookies = parse_cookie(cookie_header.decode("latin-1")) if cookie_header else {}
    if cookies and not config.known_cookies.issuperset(cookies):
        return False
    query_string = scope.get("query_string")
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else {}
    if query and (
        not (FRAME_QUERY if frame else PAGE_QUERY).issuperset(query)
        or len(query) != query_string.count(b"&") + 1  # a name twice
    ):
        return False
    asked = query.get("lang")
    cookie_language = cookies.get(config.language_cookie)
    if not frame and asked in SUPPORTED_LANGUAGES and asked != cookie_language:
        return False  # Django sets the language cookie
    # pages.tracking._explicit_language and the views' variants.
    chosen = asked or cookie_language or ""
    explicit = chosen if chosen in SUPPORTED_LANGUAGES else ""
    accepted = "" if explicit else _accepted_language(headers.get(b"accept-language", b"").decode("latin-1"))
    token = match.group(2)
    variant = f"{'embed-page' if frame else 'page'}:{explicit or '~' + accepted}"
    page = _warm_page(token, variant, frame)
    if page is None and not frame:
        page = await _cold_page(scope, token, variant, explicit, accepted)
    if page is None or page.forms:
        # A page with the customer's forms on it (the delivered page's
        # rating and report) needs this visitor's CSRF token and cookie:
        # Django's middleware gives both.
        return False
    if frame:
        wanted_brand = query.get("brand")
        if wanted_brand is not None and wanted_brand != page.brand_slug:
            return False  # the frame's 404, framed for the brand named
    if method == "GET" and config.counting:
        count_view_of(token)
    nonce = _nonce()
    body = nonce.join(page.parts)
    before, csp, after = _header_set(config, page.language, secure, page.frame_origins)
    answer = [
        *before,
        (b"content-length", b"%d" % len(body)),
        (b"content-security-policy", nonce.join(csp)),
        *after,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": answer})
    # Under HEAD the server sends no body, but the same Content-Length.
    await send({"type": "http.response.body", "body": body})
    return True
