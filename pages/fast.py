"""A warm tracking page served before Django's handler.

Django's ASGI handler and the middleware cost a warm page most of its time
(NOTES.md, "What a request costs"): a page that is one Redis read away is
answered here, with the headers Django's path gives it, built by Django's
own pieces (the CSP from settings.SECURE_CSP through build_policy, the
security headers from the same settings). Anything this path does not know
falls through to Django, which answers as always: another method or path, an
htmx request, a query other than ?lang= (a new choice sets a cookie), a
cookie other than the language's and CSRF's (a session: staff, messages), a
Host Django would refuse, a plain request that SECURE_SSL_REDIRECT would
redirect, a page not in the cache or past its expiry.
tests/pages/test_fast.py fetches the same pages both ways and compares
them byte for byte. FAST_CACHED_PAGES=false turns it off.
"""

from __future__ import annotations

import functools
import re
import secrets
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.csp import build_policy

from . import cache as page_cache
from .counting import count_view_of
from .headers import ROBOTS
from .tracking import SUPPORTED_LANGUAGES, _accepted_language

PAGE_PATH = re.compile(r"^/t/([A-Za-z0-9_-]{16,64})/$")
_NONCE_SLOT = "fast-page-nonce-slot"


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


@functools.lru_cache(maxsize=8)
def _csp_template(config_key: str) -> str:
    return build_policy(settings.SECURE_CSP, _NONCE_SLOT)


def _headers(language: str, length: int, nonce: str, secure: bool) -> list[tuple[bytes, bytes]]:
    """In the order Django's path sends them: the view's, then the
    middleware's on the way out (X-Frame-Options, CommonMiddleware's
    Content-Length, the CSP, SecurityMiddleware's)."""
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-language", language.encode()),
        (b"vary", b"HX-Request, HX-Target, Accept-Language, Cookie"),
        (b"x-robots-tag", ROBOTS.encode()),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
        (b"content-length", str(length).encode()),
        (b"content-security-policy", _csp_template(repr(settings.SECURE_CSP)).replace(_NONCE_SLOT, nonce).encode()),
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


async def serve_cached_page(scope, send) -> bool:
    """Answer a warm tracking page here and say True; False: Django answers."""
    if scope["method"] != "GET" or not enabled():
        return False
    match = PAGE_PATH.match(scope["path"])
    if match is None:
        return False
    headers = dict(scope["headers"])
    if len(headers) != len(scope["headers"]) or b"hx-request" in headers:
        return False
    host = headers.get(b"host", b"").decode("latin-1")
    if not _host_allowed(host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG):
        return False
    secure = _is_secure(scope, headers)
    if settings.SECURE_SSL_REDIRECT and not secure:
        return False
    cookies = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
    if set(cookies) - {settings.LANGUAGE_COOKIE_NAME, settings.CSRF_COOKIE_NAME}:
        return False
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if any(name != "lang" for name, _value in query) or len(query) > 1:
        return False
    asked = query[0][1] if query else None
    cookie_language = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    if asked in SUPPORTED_LANGUAGES and asked != cookie_language:
        return False  # Django sets the language cookie
    # pages.tracking._explicit_language and the view's variant.
    chosen = asked or cookie_language or ""
    explicit = chosen if chosen in SUPPORTED_LANGUAGES else ""
    accepted = "" if explicit else _accepted_language(headers.get(b"accept-language", b"").decode("latin-1"))
    token = match.group(1)
    found = page_cache.lookup(token, f"page:{explicit or '~' + accepted}")
    if found.html is None or found.expired:
        return False
    if page_cache.CSRF_PLACEHOLDER.encode() in found.html:
        # A page with the customer's forms on it (the delivered page's
        # rating and report) needs this visitor's CSRF token and cookie:
        # Django's middleware gives both.
        return False
    if settings.PAGE_VIEW_COUNTING:
        count_view_of(token)
    nonce = secrets.token_urlsafe(16)
    body = found.html.replace(page_cache.NONCE_PLACEHOLDER.encode(), nonce.encode())
    await send(
        {"type": "http.response.start", "status": 200, "headers": _headers(found.language, len(body), nonce, secure)}
    )
    await send({"type": "http.response.body", "body": body})
    return True
