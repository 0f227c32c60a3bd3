"""What the tracking page counts for the brand's analytics: a view of a
parcel's page and a click on one of its support links. One Redis HINCRBY
on the page's path, no database write (tracking_portal.counters); beat
folds the counts into the database (analytics.folding)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.views.decorators.http import require_safe

from tracking_portal import counters

from .headers import keep_out_of_search
from .presenters import find_shipment

# Field names in the counters' hash: "<what>:<public token>". The token is
# what the warm page knows without a query; the fold turns it into the
# shipment, and drops tokens that name none.
VIEW = "view"
SUPPORT = "support"


def count_page(request, token: str) -> None:
    """A view of a parcel's page (or its widget frame) that a person loaded:
    a GET of the whole page. The page's own live updates (htmx fragments)
    and HEADs from link checkers are not views."""
    if request.method == "GET" and not request.htmx and settings.PAGE_VIEW_COUNTING:
        count_view_of(token)


def count_view_of(token: str) -> None:
    counters.bump(f"{VIEW}:{token}")


def count_support_click(token: str) -> None:
    counters.bump(f"{SUPPORT}:{token}")


class _ContactRedirect(HttpResponseRedirect):
    # Django refuses mailto: and tel: redirects unless told; the target is
    # always the brand's own stored contact, never anything from the request.
    allowed_schemes = ["http", "https", "mailto", "tel"]


def support_target(brand, kind: str) -> str:
    """Where a support link of this kind leads: the brand's stored phone,
    email or help centre; "" when the brand has none of that kind."""
    if kind == "phone" and brand.support_phone:
        return "tel:" + brand.support_phone
    if kind == "email" and brand.support_email:
        return "mailto:" + brand.support_email
    if kind == "url" and brand.support_url.startswith(("https://", "http://")):
        return brand.support_url
    return ""


@require_safe
def support(request, token: str, kind: str):
    """A click on the page's support link: counted for the parcel, then on
    to the brand's contact. Anything else (an unknown token or kind, a
    contact the brand doesn't have) is a 404, so this is no open redirect."""
    shipment = find_shipment(token)
    target = support_target(shipment.brand, kind) if shipment is not None else ""
    if not target:
        raise Http404
    if request.method == "GET":
        count_support_click(token)
    response = _ContactRedirect(target)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return keep_out_of_search(response)
