"""The look-up: a customer finds their parcel by tracking number and delivery
postcode (or email), within one brand at /track/<brand_slug>/ or across all
brands at /track/. An order reference in the tracking number's place finds
the order: the brand's parcels sharing that ``order_ref`` that go to that
postcode (or email), each shown by tracking number and status with a link to
its tracking page; one parcel found goes straight to its page.

The rules it keeps:

- A brand's look-up searches that brand only. The global one never picks
  between brands: when parcels of several brands match, the customer is
  shown those brands' names (nothing else of the parcels) and chooses, each
  choice going through that brand's own look-up.
- "No such parcel", "wrong postcode" and an unknown brand get the same
  answer after the same query, so a miss says neither which half was wrong
  nor which numbers or brands exist.
- Guessing is limited twice over: each client address (``REMOTE_ADDR``, as
  the server sets it; behind a proxy that is uvicorn's
  ``--forwarded-allow-ips``, see the Procfile) has LOOKUP_LIMIT attempts per
  window, and each tracking number FAILED_LOOKUPS_PER_NUMBER failed ones,
  whatever the address; past either, 429 with Retry-After. An order
  reference is what was typed in the tracking number's field, and counts as
  one: a failed order look-up counts against that reference.
- A parcel of one brand is never shown beside another brand's: orders of
  several brands under one reference are a choice between brands, as
  parcels are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from shipments import limiter, selectors
from shipments.branding import brand_context
from shipments.labels import STATUS_LABELS
from shipments.links import is_expired
from shipments.models import Brand
from tracking_portal.clients import client_address

from . import lookup_reads
from .forms import LookupForm
from .headers import keep_out_of_search, remember_language
from .tracking import SUPPORTED_LANGUAGES, _explicit_language, _see_other

LOOKUP_TEMPLATE = "shipments/lookup.html"
LOOKUP_LIMIT = 10
LOOKUP_WINDOW_SECONDS = 600
FAILED_LOOKUPS_PER_NUMBER = 10
ADDRESS_LIMIT = limiter.per_seconds(LOOKUP_LIMIT, LOOKUP_WINDOW_SECONDS, namespace="lookup-address")
NUMBER_LIMIT = limiter.per_seconds(FAILED_LOOKUPS_PER_NUMBER, LOOKUP_WINDOW_SECONDS, namespace="lookup-number")
# More than any real number of brands sharing one tracking number and
# postcode: the query stays bounded whatever the data.
MAX_CANDIDATES = 20
# More parcels than any real order has, of each brand and in all.
MAX_ORDER_PARCELS = 50
MAX_ORDER_CANDIDATES = 200

LOOKUP_NOT_FOUND = _(
    "We could not find a parcel with those details. Check the tracking number and the postcode or email address."
)


@dataclass(frozen=True)
class Match:
    """A parcel the look-up found, and as much of its brand as a customer
    choosing between brands may see."""

    url: str
    brand_name: str
    brand_slug: str


@dataclass(frozen=True)
class Parcel:
    """A parcel as a found order lists it: nothing of the recipient."""

    url: str
    tracking_number: str
    status_label: str


@dataclass(frozen=True)
class Found:
    """What the look-up found of one brand: a parcel by its number, or an
    order's parcels (with the parcel by its number, if the reference is also
    one of the brand's tracking numbers)."""

    brand_name: str
    brand_slug: str
    parcels: tuple[Parcel, ...]


def normalise_postcode(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", value.upper())


def _matcher(postcode_or_email: str):
    """Whether a shipment goes to this postcode, or to this email."""
    given = postcode_or_email.strip()
    postcode, email = normalise_postcode(given), given.lower()
    if "@" in given:
        return lambda shipment: bool(shipment.recipient_email) and shipment.recipient_email.lower() == email
    return lambda shipment: bool(postcode) and normalise_postcode(shipment.destination_postcode) == postcode


def find_for_lookup(tracking_number: str, postcode_or_email: str, *, brand_slug: str | None = None) -> list[Match]:
    """The parcels with this tracking number whose delivery postcode or
    recipient email matches, of the brand with ``brand_slug`` only when it
    is given (an unknown slug finds nothing, after the same query); at most
    one per brand, as a brand's tracking numbers are unique."""
    matches = _matcher(postcode_or_email)
    candidates = lookup_reads.lookup_candidates(
        {tracking_number, tracking_number.upper()}, brand_slug=brand_slug, limit=MAX_CANDIDATES
    )
    return [
        Match(shipment.get_absolute_url(), shipment.brand.name, shipment.brand.slug)
        for shipment in candidates
        if matches(shipment)
    ]


def find_parcels_or_order(reference: str, postcode_or_email: str, *, brand_slug: str | None = None) -> list[Found]:
    """What ``reference`` names with this postcode or email, a tracking
    number or an order reference, one Found per brand in the brands' name
    order (of the brand with ``brand_slug`` only, when it is given): each
    parcel must go to this postcode or email itself, so an order's parcel
    sent elsewhere is not shown. One query, whatever it finds."""
    matches = _matcher(postcode_or_email)
    references = {reference, reference.upper()}
    candidates = lookup_reads.reference_candidates(
        references, brand_slug=brand_slug, per_brand=MAX_ORDER_PARCELS, limit=MAX_ORDER_CANDIDATES
    )
    brands: dict[int, tuple[str, str, dict[int, Parcel]]] = {}
    for shipment in candidates:
        if not matches(shipment):
            continue
        # An order lists the parcels whose links work; a parcel asked for
        # by its number goes to its page, which says that it has expired.
        if shipment.tracking_number not in references and is_expired(shipment):
            continue
        *_brand, parcels = brands.setdefault(shipment.brand_id, (shipment.brand.name, shipment.brand.slug, {}))
        parcels[shipment.pk] = Parcel(
            shipment.get_absolute_url(), shipment.tracking_number, str(STATUS_LABELS[shipment.status_enum])
        )
    found = [
        Found(name, slug, tuple(sorted(parcels.values(), key=lambda parcel: parcel.tracking_number)))
        for name, slug, parcels in brands.values()
    ]
    return sorted(found, key=lambda one: (one.brand_name, one.brand_slug))


def _number_key(tracking_number: str) -> str:
    return tracking_number.upper()


@require_http_methods(["GET", "POST"])
def lookup(request):
    """The look-up across every brand."""
    return _lookup(request, brand=None, brand_slug=None)


@require_http_methods(["GET", "POST"])
def brand_lookup(request, brand_slug: str):
    """One brand's look-up, under its colours; an unknown brand is the
    not-found page of the look-up across every brand, as a 404."""
    return _lookup(request, brand=selectors.brand_by_slug(brand_slug), brand_slug=brand_slug)


def _lookup(request, *, brand: Brand | None, brand_slug: str | None) -> HttpResponse:
    explicit = _explicit_language(request)
    with translation.override(explicit or translation.get_language()):
        response = _answer(request, brand=brand, brand_slug=brand_slug)
    response["Cache-Control"] = "no-store"
    # What a look-up answers leads to a parcel's private pages.
    keep_out_of_search(response)
    if request.GET.get("lang") in SUPPORTED_LANGUAGES:
        remember_language(response, explicit)
    return response


def _answer(request, *, brand: Brand | None, brand_slug: str | None) -> HttpResponse:
    unknown_brand = brand_slug is not None and brand is None
    miss_status = 404 if unknown_brand else 200
    if brand is not None:
        here = reverse("pages:brand_lookup", args=[brand.slug])
        context = {**brand_context(brand), "base_template": "shipments/branded_base.html"}
    else:
        here = reverse("pages:lookup")
        context = {"brand": None, "base_template": "base.html"}
    context.update(action_url=here, switch_url=here)

    def page(form: LookupForm, status: int, **extra) -> HttpResponse:
        return render(request, LOOKUP_TEMPLATE, {**context, "form": form, **extra}, status=status)

    def not_found(form: LookupForm) -> HttpResponse:
        return page(form, miss_status, not_found=LOOKUP_NOT_FOUND)

    def limited(reason: str, wait: int) -> HttpResponse:
        response = page(LookupForm(), 429, limited=reason)
        response["Retry-After"] = str(wait)
        return response

    if request.method == "GET":
        return not_found(LookupForm()) if unknown_brand else page(LookupForm(), 200)

    wait = limiter.hit(ADDRESS_LIMIT, client_address(request) or "unknown")
    if wait:
        return limited("address", wait)
    form = LookupForm(request.POST)
    if not form.is_valid():
        return page(form, miss_status)
    number, given = form.cleaned_data["tracking_number"], form.cleaned_data["postcode_or_email"]
    # Checked before the search, so that once a number is limited even its
    # right postcode gets nothing: guessing can't go on from new addresses.
    wait = limiter.wait(NUMBER_LIMIT, _number_key(number))
    if wait:
        return limited("number", wait)

    found = find_parcels_or_order(number, given, brand_slug=brand_slug)
    if not found:
        # A number or an order reference alike: what was typed is counted.
        limiter.hit(NUMBER_LIMIT, _number_key(number))
        return not_found(form)
    if len(found) > 1:
        choices = [
            {"name": one.brand_name, "url": reverse("pages:brand_lookup", args=[one.brand_slug])} for one in found
        ]
        return page(form, 200, choices=choices, tracking_number=number, postcode_or_email=given)
    (one,) = found
    if len(one.parcels) == 1:
        return _see_other(one.parcels[0].url)
    return page(form, 200, order=one, order_ref=number)
