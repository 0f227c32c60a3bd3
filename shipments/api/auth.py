"""Who is calling: a brand's API key as a bearer token, checked before the
body is read, along with the body's size and the key's rate limit."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from .. import keys
from ..models import ApiKey
from . import ratelimit
from .problems import Problem


def enforce_body_limit(request: HttpRequest, limit: int) -> None:
    """Refuse a body larger than ``limit`` from its Content-Length, before
    any of it is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Problem(400, "Bad Request", "Content-Length is not a number.") from None
    if length > limit:
        raise Problem(
            413,
            "Content Too Large",
            f"The body is {length} bytes; this endpoint accepts at most {limit}.",
            kind="too-large",
        )


def enforce_rate_limit(key: str) -> None:
    wait = ratelimit.hit(key)
    if wait:
        raise Problem(
            429,
            "Too Many Requests",
            f"Rate limit of {settings.API_RATE_LIMIT} (requests/seconds) reached; retry in {wait} s.",
            kind="rate-limited",
            headers={"Retry-After": str(wait)},
        )


class BrandKey(HttpBearer):
    """``Authorization: Bearer <key>``; ``request.auth`` becomes the ApiKey
    (with its brand), so a view reaches only that brand's data."""

    def __init__(self, *, uploads: bool = False):
        super().__init__()
        self.uploads = uploads

    def __call__(self, request: HttpRequest) -> ApiKey | None:
        enforce_body_limit(request, settings.API_MAX_UPLOAD_BYTES if self.uploads else settings.API_MAX_BODY_BYTES)
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        api_key = keys.authenticate_key(token.strip())
        if api_key is not None:
            # The hash, not the id: ids repeat across test databases, and a
            # count left in Redis must never meet another key.
            enforce_rate_limit("key:" + api_key.key_hash[:24])
        return api_key
