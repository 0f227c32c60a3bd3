"""Pages of the site as a whole rather than of one app: the favicon at the
address browsers ask for, and the page for an address that leads nowhere."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseNotFound, HttpResponseRedirect
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import translation
from django.views.decorators.http import require_safe

from .headers import keep_out_of_search
from .tracking import _accepted_language, _explicit_language

FAVICON = "img/favicon.svg"


@require_safe
def favicon(request):
    # Browsers ask for /favicon.ico whatever the page links; a redirect to
    # the static file (hashed in production) answers them.
    response = HttpResponseRedirect(static(FAVICON))
    response["Cache-Control"] = "public, max-age=86400"
    return response


def visitor_language(request) -> str:
    """The language the tracking page would use for a visitor whose parcel
    it does not know: their choice (the cookie), then their browser's."""
    return (
        _explicit_language(request)
        or _accepted_language(request.headers.get("Accept-Language", ""))
        or settings.LANGUAGE_CODE
    )


def page_not_found(request, exception=None):
    """handler404: a mistyped or cut tracking link gets a page in the
    visitor's language that leads to the look-up. Under /api/ the answer
    becomes a problem (shipments.api.problems.ProblemsForStrayRequests)."""
    language = visitor_language(request)
    with translation.override(language):
        html = render_to_string("404.html", {"noindex": True}, request=request)
    response = HttpResponseNotFound(html)
    response["Cache-Control"] = "no-store"
    response["Content-Language"] = language
    response["Vary"] = "Accept-Language, Cookie"
    return keep_out_of_search(response)
