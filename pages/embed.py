"""The status widget's frames, which brands' sites show in an iframe
(static/js/widget.js makes it): one parcel by its token, every parcel of an
order by a link the brand's server signs, and a look-up form.

The rules they keep:

- Framing only where the brand allows: each frame answers with the site's
  own CSP (nonce and all) but ``frame-ancestors`` from the brand's embed
  origins (``'none'`` without any), and no X-Frame-Options. Every other page
  keeps refusing to be framed.
- Every failure (unknown token, brand or order, another brand's parcel, a
  bad or expired signature, an expired tracking link) is the same 404 body,
  so a frame tells nothing of what exists.
- The tracking page's privacy: its partials and presenter, the first name and
  city at most, nothing live after the journey ends.
- A warm one-parcel frame is served like the tracking page, from the page
  cache (pages.cache), keyed by token and variant: one Redis round trip, no
  query, no rendering. The brand's embed origins are kept beside the page,
  so the frame's CSP needs no query either; an edit of the origins moves the
  page's epoch on (shipments.edits.BRAND_PAGE_FIELDS).
- The look-up in a frame needs no cookie: a cross-site iframe gets no
  SameSite=Lax cookie, so the CSRF cookie is not sent. Rather than loosen the
  site's cookies (SameSite=None), the form is exempt from CSRF and accepts
  only a submission the browser says comes from the frame's own origin
  (Sec-Fetch-Site, which no page can forge). A look-up changes nothing but
  the rate counters and answers only whoever sends it; a POST keeps the
  postcode or email out of URLs and access logs.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from django.middleware.csp import get_nonce
from django.template.loader import render_to_string
from django.urls import resolve, reverse
from django.utils import timezone, translation
from django.utils.csp import CSP
from django.utils.safestring import SafeString
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from shipments import limiter, selectors
from shipments.branding import brand_context
from shipments.embedding import embed_origins, verify_order_link
from shipments.labels import STATUS_LABELS
from shipments.links import is_expired
from shipments.models import Brand, Shipment
from shipments.recipients import recipient_zone
from shipments.zone_names import zone_name
from tracking_portal.clients import client_address

from . import cache as page_cache
from . import counting
from .forms import LookupForm
from .headers import keep_out_of_search
from .lookup import ADDRESS_LIMIT, LOOKUP_NOT_FOUND, NUMBER_LIMIT, _number_key, find_parcels_or_order
from .presenters import LocalTimes, find_page, page_context, timeline_items
from .promises import delivery_times
from .reads import PageRows, open_alert_kinds
from .site import visitor_language
from .tracking import (
    SUPPORTED_LANGUAGES,
    _accepted_language,
    _explicit_language,
    _page_language,
    _see_other,
    cached_until,
)
from .unavailable import database_away_is_503

PARCEL_TEMPLATE = "pages/embed/parcel.html"
ORDER_TEMPLATE = "pages/embed/order.html"
LOOKUP_TEMPLATE = "pages/embed/lookup.html"
NOT_FOUND_TEMPLATE = "pages/embed/not_found.html"
# The partials a frame's live update asks for; anything else gets "updates".
FRAGMENTS = frozenset({"status", "proof", "timeline"})
# The frame shows the last few scans; the full page has the whole journey.
LAST_SCANS = 3
# More parcels than any real order has: the frame stays bounded whatever
# the data.
MAX_ORDER_PARCELS = 50


@functools.cache
def _live_head() -> SafeString:
    return render_to_string("pages/embed/_live_head.html", {"csp_nonce": page_cache.NONCE_PLACEHOLDER})


def _frame_policy(response: HttpResponse, origins: list[str]) -> HttpResponse:
    """The site's CSP with the brand's origins as frame-ancestors, through
    Django's own per-view override (so the middleware still adds the nonce)."""
    config = {**settings.SECURE_CSP, "frame-ancestors": list(origins) or [CSP.NONE]}
    return csp_override(config)(lambda _request: response)(None)


def _frame_headers(response: HttpResponse, origins: list[str], language: str) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Language"] = language
    response["Vary"] = "HX-Request, HX-Target, Accept-Language, Cookie"
    keep_out_of_search(response)
    return _frame_policy(response, origins)


def not_found(request, origins: list[str] | None = None) -> HttpResponse:
    """Every frame's failure: the same body, in the visitor's language,
    framed (so the widget says something) only by the origins of the brand
    the URL names (which its own look-up frame shows anyway) or, for an
    expired link, the parcel's; by nobody otherwise."""
    language = visitor_language(request)
    with translation.override(language):
        html = render_to_string(NOT_FOUND_TEMPLATE, {"noindex": True})
    response = HttpResponse(html, status=404, content_type="text/html; charset=utf-8")
    return _frame_headers(response, origins or [], language)


def _frame_query(explicit: str) -> str:
    """What the frame's own links carry: the language chosen in the frame (a
    cross-site frame gets no language cookie)."""
    return "?" + urlencode({"lang": explicit}) if explicit else ""


def _parcel_context(page: PageRows, explicit: str, found: page_cache.Lookup) -> dict:
    shipment = page.shipment
    context = page_context(page)
    last = page.timeline[:LAST_SCANS]
    query = _frame_query(explicit)
    page_url = shipment.get_absolute_url()
    frame_url = reverse("pages:embed_tracking", args=[shipment.public_token])
    context.update(
        events=last,
        timeline_items=timeline_items(last, LocalTimes(recipient_zone(shipment))),
        live_head=_live_head(),
        csp_nonce=page_cache.NONCE_PLACEHOLDER,
        page_url=page_url,
        full_page_url=page_url + query,
        frame_url=frame_url + query,
        events_url=page_cache.events_url(page_url, found),
        switch_url=frame_url,
        oob=False,
    )
    return context


def _render_parcel(template_name: str, page: PageRows, language: str, explicit: str, found: page_cache.Lookup) -> str:
    """Rendered without the request, as the tracking page is, so that nothing
    of one visitor gets into the page cache."""
    with translation.override(language), timezone.override(recipient_zone(page.shipment)):
        return render_to_string(template_name, _parcel_context(page, explicit, found))


def _stored(origins: list[str], brand_slug: str, html: str) -> str:
    """The frame as the page cache keeps it: a first line with what its
    headers need (origins are normalised, so they hold no space)."""
    return f"{brand_slug} {' '.join(origins)}\n{html}"


def _unstored(value: bytes) -> tuple[str, list[str], bytes]:
    header, _, html = value.partition(b"\n")
    brand_slug, *origins = header.decode().split(" ")
    return brand_slug, [origin for origin in origins if origin], html


def _parcel_response(request, html: bytes, language: str, origins: list[str]) -> HttpResponse:
    body = html.replace(page_cache.NONCE_PLACEHOLDER.encode(), str(get_nonce(request)).encode())
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    return _frame_headers(response, origins, language)


def _origins_of(brand_slug: str | None) -> list[str]:
    """The embed origins of the brand a frame's URL names (the widget's
    data-brand), so that its widget shows a failure; none without one."""
    brand = selectors.brand_by_slug(brand_slug) if brand_slug else None
    return embed_origins(brand) if brand is not None else []


@xframe_options_exempt
@require_safe
@database_away_is_503
def embed_tracking(request, token: str):
    """One parcel in a frame; with htmx, its fragments. ``?brand=`` (the
    widget's data-brand) must be the parcel's brand when it is given."""
    if request.htmx:
        target = request.htmx.target or ""
        template_name = f"{PARCEL_TEMPLATE}#{target if target in FRAGMENTS else 'updates'}"
    else:
        template_name = PARCEL_TEMPLATE
    explicit = _explicit_language(request)
    accepted = "" if explicit else _accepted_language(request.headers.get("Accept-Language", ""))
    variant = f"embed-{template_name.partition('#')[2] or 'page'}:{explicit or '~' + accepted}"
    wanted_brand = request.GET.get("brand")

    found = page_cache.lookup(token, variant)
    if found.html is not None and not found.expired:
        brand_slug, origins, html = _unstored(found.html)
        if wanted_brand is not None and wanted_brand != brand_slug:
            return not_found(request, _origins_of(wanted_brand))
        counting.count_page(request, token)
        return _parcel_response(request, html, found.language, origins)

    page = find_page(token)
    if page is None:
        return not_found(request, _origins_of(wanted_brand))
    shipment = page.shipment
    if wanted_brand is not None and wanted_brand != shipment.brand.slug:
        return not_found(request, _origins_of(wanted_brand))
    origins = embed_origins(shipment.brand)
    if is_expired(shipment):
        # Framed where the parcel's widget is, so that it says so there.
        return not_found(request, origins)
    counting.count_page(request, token)
    language = _page_language(shipment, explicit, accepted)
    until = cached_until(shipment)  # before rendering, as the tracking page does
    html = _render_parcel(template_name, page, language, explicit, found)
    page_cache.store(
        token,
        variant,
        found,
        html=_stored(origins, shipment.brand.slug, html),
        language=language,
        expires_at=until,
    )
    return _parcel_response(request, html.encode(), language, origins)


def _order_parcels(brand: Brand, order_ref: str) -> list[Shipment]:
    """The brand's parcels of this order whose tracking links still work, by
    tracking number."""
    shipments = (
        Shipment.objects.filter(brand=brand, order_ref=order_ref)
        .select_related("brand")
        .order_by("tracking_number")[:MAX_ORDER_PARCELS]
    )
    return [shipment for shipment in shipments if not is_expired(shipment)]


def _parcel_row(shipment: Shipment, times: LocalTimes, query: str, open_alerts: frozenset[str]) -> dict:
    """What the order frame shows of one parcel: the tracking page's status
    and what it says of when (pages.promises), nothing of the recipient."""
    return {
        **delivery_times(shipment, open_alerts, times, timezone.now()),
        "tracking_number": shipment.tracking_number,
        "token": shipment.public_token,
        "status": shipment.status,
        "headline": str(STATUS_LABELS[shipment.status_enum]),
        "final": shipment.is_terminal,
        "delivered": times.moment(shipment.delivered_at),
        "page_url": shipment.get_absolute_url() + query,
        "events_url": shipment.get_absolute_url() + "events/",
    }


@xframe_options_exempt
@require_safe
def embed_order(request, brand_slug: str, order_ref: str):
    """Every parcel of an order, by a link the brand's server signed
    (shipments.embedding.verify_order_link); with htmx, the list alone."""
    brand = selectors.brand_by_slug(brand_slug)
    if brand is None:
        return not_found(request)
    origins = embed_origins(brand)
    expires, signature = request.GET.get("expires", ""), request.GET.get("signature", "")
    if not verify_order_link(brand, order_ref, expires, signature):
        return not_found(request, origins)
    parcels = _order_parcels(brand, order_ref)
    if not parcels:
        return not_found(request, origins)

    explicit = _explicit_language(request)
    accepted = "" if explicit else _accepted_language(request.headers.get("Accept-Language", ""))
    language = _page_language(parcels[0], explicit, accepted)
    query = _frame_query(explicit)
    params = {"expires": expires, "signature": signature, **({"lang": explicit} if explicit else {})}
    frame_url = reverse("pages:embed_order", args=[brand.slug, order_ref]) + "?" + urlencode(params)
    template_name = f"{ORDER_TEMPLATE}#parcels" if request.htmx else ORDER_TEMPLATE
    zone = recipient_zone(parcels[0])
    with translation.override(language), timezone.override(zone):
        times = LocalTimes(zone)
        alerts = open_alert_kinds([shipment.pk for shipment in parcels])
        rows = [_parcel_row(shipment, times, query, alerts.get(shipment.pk, frozenset())) for shipment in parcels]
        html = render_to_string(
            template_name,
            {
                **brand_context(brand),
                "order_ref": order_ref,
                "parcels": rows,
                "live": [row for row in rows if not row["final"]],
                "zone": zone,
                "zone_name": str(zone_name(zone)),
                "frame_url": frame_url,
                "switch_url": reverse("pages:embed_order", args=[brand.slug, order_ref]),
                "switch_query": urlencode({"expires": expires, "signature": signature}),
                "live_head": _live_head(),
                "csp_nonce": page_cache.NONCE_PLACEHOLDER,
            },
        )
    return _parcel_response(request, html.encode(), language, origins)


def _from_own_frame(request) -> bool:
    """Whether the browser says this POST comes from the portal's own page
    (the frame's form). Browsers without Sec-Fetch-Site are let through: the
    look-up holds nothing a forged request could take."""
    return request.headers.get("Sec-Fetch-Site", "same-origin") == "same-origin"


@xframe_options_exempt
@csrf_exempt
@require_http_methods(["GET", "POST"])
def embed_lookup(request, brand_slug: str):
    """The look-up form of one brand in a frame; a hit shows the parcel in
    the frame itself (the one-parcel frame), an order reference its parcels,
    each leading to its frame. The look-up's own rule and limits
    (pages.lookup), scoped to this brand."""
    brand = selectors.brand_by_slug(brand_slug)
    if brand is None:
        return not_found(request)
    origins = embed_origins(brand)
    explicit = _explicit_language(request)
    language = explicit or _accepted_language(request.headers.get("Accept-Language", "")) or brand.default_language
    if language not in SUPPORTED_LANGUAGES:
        language = settings.LANGUAGE_CODE
    query = _frame_query(explicit)
    here = reverse("pages:embed_lookup", args=[brand.slug])

    def page(form: LookupForm, status: int = 200, **extra) -> HttpResponse:
        with translation.override(language):
            html = render_to_string(
                LOOKUP_TEMPLATE,
                {
                    **brand_context(brand),
                    "form": form,
                    "action_url": here + query,
                    "switch_url": here,
                    "full_lookup_url": reverse("pages:brand_lookup", args=[brand.slug]) + query,
                    "csp_nonce": get_nonce(request),
                    **extra,
                },
                request=request,
            )
        response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
        return _frame_headers(response, origins, language)

    def limited(reason: str, wait: int) -> HttpResponse:
        response = page(LookupForm(), 429, limited=reason)
        response["Retry-After"] = str(wait)
        return response

    if request.method == "GET":
        return page(LookupForm())
    if not _from_own_frame(request):
        return page(LookupForm(), 403)
    wait = limiter.hit(ADDRESS_LIMIT, client_address(request) or "unknown")
    if wait:
        return limited("address", wait)
    form = LookupForm(request.POST)
    if not form.is_valid():
        return page(form, 400)
    number, given = form.cleaned_data["tracking_number"], form.cleaned_data["postcode_or_email"]
    wait = limiter.wait(NUMBER_LIMIT, _number_key(number))
    if wait:
        return limited("number", wait)
    # Scoped to the brand, so at most one brand's parcels are found.
    found = find_parcels_or_order(number, given, brand_slug=brand.slug)
    if not found:
        limiter.hit(NUMBER_LIMIT, _number_key(number))
        return page(form, not_found=LOOKUP_NOT_FOUND)
    frames = [_parcel_frame_url(parcel.url) + query for parcel in found[0].parcels]
    if len(frames) == 1:
        return _frame_policy(_see_other(frames[0]), origins)
    parcels = [
        {"url": url, "tracking_number": parcel.tracking_number, "status_label": parcel.status_label}
        for url, parcel in zip(frames, found[0].parcels, strict=True)
    ]
    return page(form, order_ref=number, order_parcels=parcels)


def _parcel_frame_url(tracking_page_url: str) -> str:
    """The one-parcel frame of the parcel whose tracking page this is."""
    return reverse("pages:embed_tracking", args=[resolve(tracking_page_url).kwargs["token"]])
