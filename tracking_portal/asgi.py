import gc
import io
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")

django_application = get_asgi_application()

# These need Django set up first.
from django.core.exceptions import DisallowedHost  # noqa: E402
from django.core.handlers.asgi import ASGIRequest  # noqa: E402
from django.http import HttpResponse, HttpResponseBadRequest  # noqa: E402
from django.middleware.security import SecurityMiddleware  # noqa: E402

from pages.fast import serve_cached_page  # noqa: E402
from pages.live.stream import STREAM_PATH, sse_app  # noqa: E402
from tracking_portal.body_limit import BodyLimit  # noqa: E402

security_log = logging.getLogger("django.security.DisallowedHost")

# What a page's answer would carry too, on the answers given here instead.
REFUSAL_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


def stream_refusal(scope) -> HttpResponse | None:
    """What Django's middleware would answer instead of the page, for a
    request that skips it: 400 for a Host not in ALLOWED_HOSTS, and with
    SECURE_SSL_REDIRECT a 301 to HTTPS for a request that is not secure
    (SECURE_PROXY_SSL_HEADER included). Django's own request and middleware
    decide, so the stream follows the same rules as every page."""
    request = ASGIRequest(scope, io.BytesIO())
    try:
        request.get_host()
    except DisallowedHost as exc:
        security_log.error("%s", exc)
        return HttpResponseBadRequest(b"Bad Request", content_type="text/plain; charset=utf-8")
    return SecurityMiddleware(lambda request: None).process_request(request)


async def stream_app(scope, receive, send) -> None:
    refusal = stream_refusal(scope)
    if refusal is None:
        await sse_app(scope, receive, send)
        return
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in refusal.items()]
    await send({"type": "http.response.start", "status": refusal.status_code, "headers": headers + REFUSAL_HEADERS})
    await send({"type": "http.response.body", "body": refusal.content})


async def portal(scope, receive, send):
    # A tracking page's event stream lives for minutes: it skips Django's
    # handler, which would hold a thread per open stream (pages.live.stream).
    if scope["type"] == "http" and STREAM_PATH.match(scope["path"]):
        await stream_app(scope, receive, send)
    else:
        await django_application(scope, receive, send)


# Bodies are held to their limits before anything reads them, Django's
# handler included (tracking_portal/body_limit.py).
limited_portal = BodyLimit(portal)


async def application(scope, receive, send):
    # A warm page or widget frame is answered before Django's handler, which
    # would cost it most of its time (pages/fast.py); and before the body
    # limit, as it reads no body (a request that declares one goes on to
    # the limit and Django).
    if scope["type"] == "http" and await serve_cached_page(scope, send):
        return
    await limited_portal(scope, receive, send)


# What is loaded by now lives as long as the process; frozen, it stays out of
# the full collections that otherwise grow with the number of open streams.
gc.freeze()
