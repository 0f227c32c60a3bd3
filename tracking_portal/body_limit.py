"""Request bodies held to a size per path, before any of them is read.

The rule: a request whose Content-Length is over its path's limit is
answered 413 at once, without calling the application or reading a byte of
the body, and its connection is closed; a body without a length (chunked)
is counted as it arrives and cut off at the limit: the application is told
the client went away, never handed the surplus, and the client gets the
413 if nothing else was answered yet. Django's ASGI handler reads (and
spools to disk) the whole body before any view or middleware runs, so this
has to happen in front of it.

The limits are settings: the API's JSON (API_MAX_BODY_BYTES), its proof
upload (API_MAX_UPLOAD_BYTES), the admin's uploads (ADMIN_MAX_UPLOAD_BYTES)
and everything else, the public pages and their forms
(PUBLIC_MAX_BODY_BYTES). The API checks its own limits again
(shipments.api.auth.enforce_body_limit) for servers that don't route
through here.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.template.defaultfilters import filesizeformat
from django.utils import translation
from django.utils.translation import gettext

from shipments.api.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

UPLOAD_PATH = re.compile(r"^/api/v1/shipments/[^/]+/proof-of-delivery/?$")
IMPORT_PATH = "/admin/shipments/shipment/import/"
DISCONNECT = {"type": "http.disconnect"}
# What every refusal carries besides its body: it is no page to keep or
# refer from, and the connection goes with it, its unread body unread.
COMMON_HEADERS = [
    (b"connection", b"close"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


def limit_for(path: str, *, has_session: bool = False) -> int:
    if UPLOAD_PATH.match(path):
        return settings.API_MAX_UPLOAD_BYTES
    if path.startswith("/api/"):
        return settings.API_MAX_BODY_BYTES
    if path.startswith("/admin/") and has_session and not path.startswith("/admin/login/"):
        # Uploads are for signed-in staff: without a session (the login
        # page, anyone not signed in) an admin form is as small as a page's,
        # so nobody unknown gets megabytes spooled to disk.
        return settings.ADMIN_MAX_IMPORT_BYTES if path == IMPORT_PATH else settings.ADMIN_MAX_UPLOAD_BYTES
    return settings.PUBLIC_MAX_BODY_BYTES


def has_session_cookie(scope) -> bool:
    marker = settings.SESSION_COOKIE_NAME.encode() + b"="
    return any(name == b"cookie" and marker in value for name, value in scope["headers"])


def declared_length(scope) -> int | None:
    """The Content-Length, None without one, -1 when it is not a number
    (servers refuse most of those before we see them)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class BodyLimit:
    """ASGI middleware around the whole site (see the module's docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"], has_session=has_session_cookie(scope))
        length = declared_length(scope)
        if length is not None:
            if length < 0:
                await _answer(send, 400, *_bad_length(scope))
            elif length > limit:
                await _answer(send, 413, *_too_large(scope, limit))
            else:
                # The server holds the body to its declared length.
                await self.app(scope, receive, send)
            return

        received = 0
        cut_off = False
        answered = False

        async def counted_receive():
            nonlocal received, cut_off, answered
            if cut_off:
                return DISCONNECT
            message = await receive()
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received <= limit:
                return message
            # The surplus never reaches the application, which stops as if
            # the client had gone; the server, told nothing more is read,
            # closes the connection after the answer.
            cut_off = True
            if not answered:
                answered = True
                await _answer(send, 413, *_too_large(scope, limit))
            return DISCONNECT

        async def guarded_send(message):
            nonlocal answered
            if cut_off:
                # The 413 (or a response already under way) is all the
                # client gets; an unfinished response ends the connection.
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def _too_large(scope, limit: int) -> tuple[bytes, bytes]:
    if scope["path"].startswith("/api/"):
        return _problem(
            scope,
            413,
            "Content Too Large",
            f"The body is larger than this endpoint accepts (at most {limit} bytes).",
            "too-large",
        )
    with translation.override(_language(scope)):
        text = gettext("What you sent is too large: this page accepts at most %(size)s.") % {
            "size": filesizeformat(limit)
        }
    return b"text/plain; charset=utf-8", text.encode()


def _bad_length(scope) -> tuple[bytes, bytes]:
    if scope["path"].startswith("/api/"):
        return _problem(scope, 400, "Bad Request", "Content-Length is not a number.", "")
    return b"text/plain; charset=utf-8", b"Bad Request"


def _problem(scope, status: int, title: str, detail: str, kind: str) -> tuple[bytes, bytes]:
    # The same body as shipments.api.problems gives from inside the API.
    body = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope["path"],
    }
    return PROBLEM_CONTENT_TYPE.encode(), json.dumps(body).encode()


def _language(scope) -> str:
    """The visitor's language as Django's LocaleMiddleware would pick it
    (cookie, then Accept-Language), without building a whole request."""
    request = HttpRequest()
    headers = dict(scope["headers"])
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", b"").decode("latin-1")
    request.COOKIES = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
    return translation.get_language_from_request(request)


async def _answer(send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *COMMON_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
