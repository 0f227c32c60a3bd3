"""A public page whose database is away (the connection pool timed out,
the server refused) answers 503 with Retry-After, as the API does, rather
than a 500: the visitor is told to try again in a moment, and a load
balancer or crawler knows the outage is brief."""

from __future__ import annotations

import functools
import logging

from django.db import OperationalError
from django.http import HttpResponse
from django.utils.translation import gettext as _

from .headers import keep_out_of_search

log = logging.getLogger(__name__)

# The same wait the API asks for (shipments.api.problems).
RETRY_AFTER_SECONDS = 5


def unavailable() -> HttpResponse:
    response = HttpResponse(
        _("Tracking is briefly unavailable. Please try again in a moment."),
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return keep_out_of_search(response)


# Set in an ASGI request's scope by pages.fast when this request's own try
# at the database (a cold page's render) just failed: the view answers 503
# at once rather than waiting for the pool's timeout a second time.
DATABASE_AWAY = "tracking_portal.database_away"


def database_away_is_503(view):
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        scope = getattr(request, "scope", None)
        if scope is not None and scope.get(DATABASE_AWAY):
            log.warning("A public page answered 503, database unavailable: %s", scope[DATABASE_AWAY])
            return unavailable()
        try:
            return view(request, *args, **kwargs)
        except OperationalError as exc:
            log.warning("A public page answered 503, database unavailable: %s", exc)
            return unavailable()

    return wrapped
