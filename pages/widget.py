"""GET /widget.js: the status widget's loader (static/js/widget.js) at the
one address brands paste, which stays the same whatever the static files'
hashed names are. A classic script: it needs no CORS, only to be read as
JavaScript and nothing else."""

from __future__ import annotations

import functools
import hashlib

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.views.decorators.http import etag, require_safe

LOADER = "js/widget.js"
# Short, so a fixed loader reaches every brand's site within minutes; the
# ETag makes the revalidation after that cheap.
CACHE_CONTROL = "public, max-age=300"


def _read() -> bytes:
    path = finders.find(LOADER)
    if path is None:
        raise FileNotFoundError(LOADER)
    with open(path, "rb") as source:
        return source.read()


@functools.lru_cache(maxsize=1)
def _cached() -> bytes:
    return _read()


def loader_source() -> bytes:
    # Read again on every request in development, where the file changes.
    return _read() if settings.DEBUG else _cached()


def _etag(request) -> str:
    return hashlib.sha256(loader_source()).hexdigest()[:32]


@require_safe
@etag(_etag)
def loader(request):
    response = HttpResponse(loader_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    # Any site may run it: that is what it is for.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
