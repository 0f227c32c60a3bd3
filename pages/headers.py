"""What every public page of a parcel sends besides its body: the
visitor's language cookie and the robots header. One home for each, so the
tracking page, the look-up and the 404 cannot drift apart."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse

# A parcel's pages carry a private link: search engines must neither keep
# them nor follow their links (the meta tag in base.html says noindex too).
ROBOTS = "noindex, nofollow"


def keep_out_of_search(response: HttpResponse) -> HttpResponse:
    response["X-Robots-Tag"] = ROBOTS
    return response


def remember_language(response: HttpResponse, language: str) -> HttpResponse:
    """Keep the visitor's choice of language (the switcher's ?lang=) in the
    cookie Django's own set_language view uses, with the same flags: Secure
    outside DEBUG, HttpOnly, SameSite from settings."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response
