"""The public pages: the tracking page with its fragments and forms (the
look-up by tracking number is in pages.lookup)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.middleware.csp import get_nonce
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template, render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation.trans_real import parse_accept_lang_header
from django.views.decorators.http import require_POST, require_safe

from shipments import limiter
from shipments.branding import brand_context
from shipments.customer import ActionRefused, Reported, leave_delivery_instructions, rate_delivery, report_problem
from shipments.labels import STATUS_LABELS
from shipments.links import is_expired, link_expires_at
from shipments.models import Brand, Shipment
from shipments.recipients import recipient_language, recipient_zone
from shipments.statuses import SHOWS_DRIVER, Status
from tracking_portal.clients import client_address

from . import cache as page_cache
from . import counting
from .choice_forms import AddressNoteForm
from .choice_presenters import choice_forms_context
from .forms import InstructionsForm, ProblemForm, RatingForm
from .headers import keep_out_of_search, remember_language
from .presenters import customer_actions, find_page, find_shipment, page_context
from .promises import fresh_until
from .reads import PageRows
from .unavailable import database_away_is_503

PAGE_TEMPLATE = "shipments/tracking.html"
SUPPORTED_LANGUAGES = frozenset(code for code, _name in settings.LANGUAGES)
# Partials a page asks for by targeting them; anything else gets "updates",
# which carries them all out of band.
FRAGMENTS = frozenset({"status", "map", "proof", "actions", "timeline"})
# The delivered page's own forms, each swapping its section with htmx.
INLINE_SECTIONS = frozenset({"rating", "report"})

REFUSALS = {
    "too_late": _("Your parcel is already on its way, so the driver can no longer get new instructions."),
    "not_delivered": _("You can rate the delivery once the parcel has been delivered."),
    "already_rated": _("This delivery has already been rated. Thank you!"),
    "not_delivered_yet": _("A parcel can be reported as not received once it shows as delivered."),
}
# A customer reports a problem once or twice; these are far above that and
# keep a script from filling support's queue or holding shipments' locks.
REPORT_ADDRESS_LIMIT = limiter.per_seconds(10, 600, namespace="report-address")
REPORT_LINK_LIMIT = limiter.per_seconds(20, 3600, namespace="report-link")


@require_safe
def home(request):
    return render(request, "shipments/home.html")


def _explicit_language(request) -> str:
    chosen = request.GET.get("lang") or request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return chosen if chosen in SUPPORTED_LANGUAGES else ""


@functools.lru_cache(maxsize=1000)
def _accepted_language(header: str) -> str:
    """The first language the browser asks for that the portal speaks, or
    "" when it asks for none of them.

    Django's public get_language_from_request() would also read the language
    cookie and fall back to LANGUAGE_CODE, so a browser's wish could not be
    told from no wish at all; the page puts the recipient's language between
    the two. Django's own parser of the header (trans_real) is used rather
    than a second one of ours."""
    for code, _quality in parse_accept_lang_header(header):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return ""


def _page_language(shipment: Shipment, explicit: str, accepted: str) -> str:
    """The visitor's own choice (the switcher), then what their browser
    asks for, then the language the parcel's messages are sent in (the
    recipient's, else the brand's default: shipments.recipients)."""
    for code in (explicit, accepted):
        if code in SUPPORTED_LANGUAGES:
            return code
    return recipient_language(shipment)


@functools.cache
def _subscribe_form_template() -> str:
    """The notifications app's subscribe form, once it is there to include."""
    try:
        get_template("notifications/subscribe_form.html")
        reverse("notifications:subscribe", args=["x" * 43])
    except (TemplateDoesNotExist, NoReverseMatch):
        return ""
    return "notifications/subscribe_form.html"


# The brand's header (with the language switcher), help card and footer on
# the tracking page: rendered once per brand and language in each process
# rather than for every freshly changed page, which is rendered on the
# request's path. The language switcher's links are the page's own.
BRAND_CHROME = {
    "brand_header": "shipments/_brand_header.html",
    "brand_support": "shipments/_support.html",
    "brand_footer": "shipments/_footer.html",
}
_SWITCH_URL = "/switch-url-placeholder/"
_brand_chrome_cache: dict[tuple, dict[str, str]] = {}


def _brand_chrome(brand: Brand, switch_url: str) -> dict[str, SafeString]:
    """BRAND_CHROME rendered in the active language, for this page."""
    # repr: some fields hold lists (the delivery days), which don't hash.
    key = (translation.get_language(), *(repr(getattr(brand, field.attname)) for field in Brand._meta.concrete_fields))
    rendered = _brand_chrome_cache.get(key)
    if rendered is None:
        if len(_brand_chrome_cache) >= 1000:
            _brand_chrome_cache.clear()
        context = {**brand_context(brand), "switch_url": _SWITCH_URL}
        rendered = {name: render_to_string(template, context) for name, template in BRAND_CHROME.items()}
        _brand_chrome_cache[key] = rendered
    return {name: mark_safe(html.replace(_SWITCH_URL, escape(switch_url))) for name, html in rendered.items()}  # noqa: S308


@functools.cache
def _live_head() -> SafeString:
    return render_to_string("shipments/_live_head.html", {"csp_nonce": page_cache.NONCE_PLACEHOLDER})


def _render_page(template_name: str, page: PageRows, language: str, found: page_cache.Lookup) -> str:
    """Render without the request, so that nothing of one visitor gets into
    what the page cache keeps."""
    shipment = page.shipment
    zone = recipient_zone(shipment)
    page_url = shipment.get_absolute_url()
    with translation.override(language), timezone.override(zone):
        context = page_context(page)
        context.update(
            _brand_chrome(shipment.brand, page_url) if template_name == PAGE_TEMPLATE else {},
            live_head=_live_head(),
            csp_nonce=page_cache.NONCE_PLACEHOLDER,
            page_url=page_url,
            # The stream may send this page its status card, in its language.
            events_url=page_cache.events_url(page_url, found, card=language),
            actions_url=page_url + "actions/",
            **_inline_forms(shipment),
            # Each partial asks whether it goes out of band ("updates" says
            # so); a name missing from the context costs the template
            # engine four exceptions per lookup.
            oob=False,
        )
        return render_to_string(template_name, context)


def status_card(token: str, language: str) -> str | None:
    """The status card of this page as the page would show it now, in this
    language, for its open stream to send when only the expected times
    moved (pages.live.stream): the page's own partial, with nothing of one
    visitor in it, through the page cache as the fragment a page targets.
    None when the page is gone, over or not in a language the portal
    speaks (the stream then tells it to load itself again)."""
    return _pushed("status", token, language)


def pushed_updates(token: str, language: str) -> str | None:
    """What the page's script would load when its stream says it changed
    (the "updates" fragment, every section out of band), in this language,
    for the stream to send instead (pages.live.stream). None when there is
    nothing to send that way: no such page, a link past its expiry, a
    language the portal doesn't speak, or a fragment with a visitor's forms
    in it (the delivered page's, which need the visitor's CSRF token); the
    page then loads itself again."""
    return _pushed("updates", token, language)


def _pushed(partial: str, token: str, language: str) -> str | None:
    """A fragment for a stream to send, through the page cache like the
    fragments a page loads (the same key as an htmx request for it in that
    language), so that one render serves every open page of the link, in
    every process, until the page changes again."""
    if language not in SUPPORTED_LANGUAGES:
        return None
    variant = f"{partial}:{language}"
    found = page_cache.lookup(token, variant)
    if found.html is not None and not found.expired:
        html = found.html.decode()
    else:
        page = find_page(token)
        if page is None or is_expired(page.shipment) or (partial == "status" and page.shipment.is_terminal):
            return None
        until = cached_until(page.shipment)
        html = _render_page(f"{PAGE_TEMPLATE}#{partial}", page, language, found)
        page_cache.store(token, variant, found, html=html, language=language, expires_at=until)
    if page_cache.NONCE_PLACEHOLDER in html or page_cache.CSRF_PLACEHOLDER in html:
        return None
    return html


def _inline_forms(shipment: Shipment) -> dict:
    """The forms on the delivered page itself (the rating, a problem), with
    the CSRF placeholder that _respond fills in for each visitor."""
    if shipment.status_enum != Status.DELIVERED:
        return {}
    return {
        "csrf_token": page_cache.CSRF_PLACEHOLDER,
        "rating_form": RatingForm(),
        "report_form": ProblemForm(status=shipment.status_enum),
    }


_CSRF_PLACEHOLDER = page_cache.CSRF_PLACEHOLDER.encode()


def _respond(request, html: bytes, language: str, status: int = 200) -> HttpResponse:
    body = html.replace(page_cache.NONCE_PLACEHOLDER.encode(), str(get_nonce(request)).encode())
    if _CSRF_PLACEHOLDER in body:
        body = body.replace(_CSRF_PLACEHOLDER, get_token(request).encode())
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Language"] = language
    response["Vary"] = "HX-Request, HX-Target, Accept-Language, Cookie"
    # Per response, not in the cached HTML: fragments and forms too.
    keep_out_of_search(response)
    chosen = request.GET.get("lang")
    if chosen in SUPPORTED_LANGUAGES and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != chosen:
        remember_language(response, chosen)
    return response


def _request_language(request, shipment: Shipment) -> str:
    return _page_language(
        shipment, _explicit_language(request), _accepted_language(request.headers.get("Accept-Language", ""))
    )


def _expired(request, shipment: Shipment) -> HttpResponse:
    language = _request_language(request, shipment)
    with translation.override(language):
        html = render_to_string(
            "shipments/expired.html",
            {
                **brand_context(shipment.brand),
                "days": settings.TRACKING_LINK_DAYS_AFTER_DELIVERY,
                "csp_nonce": page_cache.NONCE_PLACEHOLDER,
                "switch_url": shipment.get_absolute_url(),
            },
        )
    return _respond(request, html.encode(), language, status=410)


def _see_other(url: str) -> HttpResponseRedirect:
    # After a POST, 303 tells every client to follow with a GET.
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _shipment_or_404(token: str) -> Shipment:
    """The shipment with this token and its brand; 404 for an unknown token."""
    shipment = find_shipment(token)
    if shipment is None:
        raise Http404
    return shipment


# HEAD too: link checkers and some mail scanners use it.
@require_safe
@database_away_is_503
def tracking(request, token: str):
    """The tracking page; with htmx, its fragments. A warm page is one Redis
    round trip: no query, no rendering."""
    if getattr(request, "scope", {}).get(NO_SUCH_PAGE):
        raise Http404  # pages.fast looked for it just now
    if request.htmx:
        target = request.htmx.target or ""
        template_name = f"{PAGE_TEMPLATE}#{target if target in FRAGMENTS else 'updates'}"
    else:
        template_name = PAGE_TEMPLATE
    explicit = _explicit_language(request)
    accepted = "" if explicit else _accepted_language(request.headers.get("Accept-Language", ""))
    variant = f"{template_name.partition('#')[2] or 'page'}:{explicit or '~' + accepted}"

    found = page_cache.lookup(token, variant)
    if found.html is not None and not found.expired:
        counting.count_page(request, token)
        return _respond(request, found.html, found.language)

    page = find_page(token)
    if page is None:
        raise Http404
    shipment = page.shipment
    if is_expired(shipment):
        return _expired(request, shipment)
    counting.count_page(request, token)
    html, language = _render_and_keep(page, template_name, variant, explicit, accepted, found)
    return _respond(request, html.encode(), language)


def _render_and_keep(page: PageRows, template_name: str, variant: str, explicit: str, accepted: str, found):
    """Render a page that was not in the cache, and keep it there."""
    shipment = page.shipment
    language = _page_language(shipment, explicit, accepted)
    # Before rendering: a moment that passes while the page is rendered
    # then ends the cached page at once rather than being missed.
    until = cached_until(shipment)
    html = _render_page(template_name, page, language, found)
    page_cache.store(shipment.public_token, variant, found, html=html, language=language, expires_at=until)
    return html, language


# Set in an ASGI request's scope by pages.fast when it has just found that
# no page has this token: the view answers 404 without asking again.
NO_SUCH_PAGE = "tracking_portal.no_such_page"


def render_cold_page(token: str, variant: str, explicit: str, accepted: str) -> tuple[bytes, str] | str | None:
    """The tracking page (not a fragment) as the view renders it when it is
    not in the cache, rendered and kept the same way, for pages.fast to
    answer without Django's handler: (html, language); NO_SUCH_PAGE, or
    None when the view has something else to say (a link past its expiry:
    410)."""
    found = page_cache.lookup(token, variant)
    if found.html is not None and not found.expired:
        return found.html, found.language  # another request's render, just kept
    page = find_page(token)
    if page is None:
        return NO_SUCH_PAGE
    if is_expired(page.shipment):
        return None
    html, language = _render_and_keep(page, PAGE_TEMPLATE, variant, explicit, accepted, found)
    return html.encode(), language


def cached_until(shipment: Shipment) -> float:
    """Until when (a Unix time; 0: as long as the cache keeps anything) a
    page rendered now may be served: not past the link's expiry, nor past
    the moment the clock alone changes what it says of when
    (pages.promises), so that a window that ends is never served as still
    promised; and, for a page that may show the driver, whose pings don't
    make it stale, not past page_cache.POSITION_MAX_AGE_SECONDS."""
    now = timezone.now()
    moment = link_expires_at(shipment) or fresh_until(shipment, now)
    until = moment.timestamp() if moment is not None else 0.0
    if shipment.status_enum in SHOWS_DRIVER:
        fresh = now.timestamp() + page_cache.POSITION_MAX_AGE_SECONDS
        until = min(until, fresh) if until else fresh
    return until


@require_safe
def actions(request, token: str):
    """The customer's forms: a page of their own without JavaScript, the
    #actions slot's content with htmx. Never cached: each form carries this
    visitor's CSRF token."""
    shipment = _shipment_or_404(token)
    if is_expired(shipment):
        return _expired(request, shipment)
    return _actions_page(request, shipment)


def _actions_page(request, shipment: Shipment, *, status: int = 200, **extra) -> HttpResponse:
    language = _request_language(request, shipment)
    template_name = "shipments/actions.html#forms" if request.htmx else "shipments/actions.html"
    inline = _inline_target(request)
    if inline:
        # A form on the delivered page itself: its section, in place (htmx
        # swaps only 2xx answers, so the refusal's words come with a 200).
        template_name, status = f"shipments/_after_delivery.html#{inline}", 200
    with translation.override(language), timezone.override(recipient_zone(shipment)):
        context = {
            **brand_context(shipment.brand),
            **customer_actions(shipment),
            "shipment": shipment,
            "headline": STATUS_LABELS[shipment.status_enum],
            "page_url": shipment.get_absolute_url(),
            "switch_url": reverse("pages:actions", args=[shipment.public_token]),
            "instructions_form": InstructionsForm(),
            "rating_form": RatingForm(),
            "report_form": ProblemForm(status=shipment.status_enum),
            "subscribe_form_template": _subscribe_form_template(),
            # After a failed attempt and before delivery: pages.choices.
            **choice_forms_context(shipment),
            "address_form": AddressNoteForm(),
            **extra,
        }
        html = render_to_string(template_name, context, request=request)
    return _respond(request, html.encode(), language, status=status)


def _inline_target(request) -> str:
    """The section of the delivered page that an htmx form there swaps
    ("rating" or "report"), or ""."""
    target = (request.htmx.target or "") if request.htmx else ""
    return target if target in INLINE_SECTIONS else ""


def _done(request, token: str, anchor: str) -> HttpResponse:
    """After a form's POST: back to the page (303), or with htmx from the
    delivered page, its section as it now stands."""
    if _inline_target(request):
        return _actions_page(request, _shipment_or_404(token))
    return _see_other(_shipment_or_404(token).get_absolute_url() + "#" + anchor)


def _form_failed(request, shipment: Shipment, **forms) -> HttpResponse:
    """The customer's forms again, with the form's errors."""
    return _actions_page(request, shipment, status=400, **forms)


@require_POST
def instructions(request, token: str):
    shipment = _shipment_or_404(token)
    if is_expired(shipment):
        return _expired(request, shipment)
    form = InstructionsForm(request.POST)
    if form.is_valid():
        try:
            leave_delivery_instructions(shipment_id=shipment.pk, instructions=form.cleaned_data["instructions"])
        except ActionRefused as refusal:
            # The form may not be on the page any more: say why at the top.
            return _form_failed(request, _shipment_or_404(token), action_error=REFUSALS[str(refusal)])
        else:
            return _see_other(shipment.get_absolute_url() + "#instructions")
    return _form_failed(request, shipment, instructions_form=form)


@require_POST
def rating(request, token: str):
    shipment = _shipment_or_404(token)
    if is_expired(shipment):
        return _expired(request, shipment)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            rate_delivery(
                shipment_id=shipment.pk, score=form.cleaned_data["score"], comment=form.cleaned_data["comment"]
            )
        except ActionRefused as refusal:
            return _form_failed(request, _shipment_or_404(token), action_error=REFUSALS[str(refusal)])
        else:
            return _done(request, token, "rating")
    return _form_failed(request, shipment, rating_form=form)


def _too_many_reports(request, shipment: Shipment, wait: int) -> HttpResponse:
    response = _actions_page(
        request, shipment, status=429, action_error=_("Too many reports in a short time. Please try again later.")
    )
    response["Retry-After"] = str(wait)
    return response


@require_POST
def report(request, token: str):
    """The customer reports a problem: passed to the brand's support (a
    customer_report alert), once while one is open."""
    # Counted before the token is looked up, so that guessing costs too.
    wait = limiter.hit(REPORT_ADDRESS_LIMIT, client_address(request) or "unknown")
    shipment = _shipment_or_404(token)
    if is_expired(shipment):
        return _expired(request, shipment)
    wait = wait or limiter.hit(REPORT_LINK_LIMIT, shipment.public_token)
    if wait:
        return _too_many_reports(request, shipment, wait)
    form = ProblemForm(request.POST, status=shipment.status_enum)
    if not form.is_valid():
        return _form_failed(request, shipment, report_form=form)
    try:
        outcome = report_problem(
            shipment_id=shipment.pk, problem=form.cleaned_data["problem"], text=form.cleaned_data["text"]
        )
    except ActionRefused as refusal:
        return _form_failed(request, _shipment_or_404(token), action_error=REFUSALS[str(refusal)])
    if outcome.result == Reported.ALREADY:
        # Sent twice, or from a page opened before the first: nothing new.
        return _actions_page(request, shipment, already_reported=True)
    if outcome.result == Reported.ADDED:
        # Answered here rather than redirected: the page after a redirect
        # could not tell this from a report of its own.
        return _actions_page(request, _shipment_or_404(token), report_added=True)
    return _done(request, token, "report")
