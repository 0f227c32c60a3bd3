import logging

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from twilio.request_validator import RequestValidator

from shipments.branding import brand_context
from shipments.links import is_expired
from shipments.models import Shipment

from . import confirmations, content, preferences, receipts
from .forms import SubscribeForm
from .models import Subscription

logger = logging.getLogger(__name__)


def mask_address(address: str) -> str:
    """Enough of an address for its owner to recognise it, no more: the
    tracking page is public."""
    if "@" in address:
        local, domain = address.split("@", 1)
        return f"{local[:1]}•••@{domain}"
    return f"{address[:3]}•••{address[-3:]}"


@require_http_methods(["GET", "POST"])
def subscribe(request, token: str):
    """Opt in to a parcel's updates. Without JavaScript the form posts here
    and gets a page of its own; with htmx the form's partial swaps in place."""
    shipment = get_object_or_404(Shipment.objects.select_related("brand"), public_token=token)
    if is_expired(shipment):
        # The link has stopped working, and with it everything reached by it.
        raise Http404
    context = {
        **brand_context(shipment.brand),
        "shipment": shipment,
        "switch_url": reverse("pages:actions", args=[shipment.public_token]),
    }
    status = 200
    if request.method == "POST":
        form = SubscribeForm(request.POST, default_region=shipment.destination_country)
        if form.is_valid():
            results = []
            for channel, address in form.addresses():
                try:
                    result = preferences.subscribe(shipment=shipment, channel=channel, address=address)
                except preferences.SubscribeRefused as refusal:
                    form.add_error(None, str(refusal))
                    break
                # The page says what will happen: updates, an email to
                # confirm first, or a reply START that only the number can send.
                results.append(
                    {
                        "outcome": result.outcome.value,
                        "subscribed": result.subscription,
                        "channel": channel,
                        "address": mask_address(address),
                    }
                )
            context["results"] = results
        if not form.is_valid():
            # htmx swaps only 2xx answers; without it, the page says 400.
            status = 200 if request.htmx else 400
        context["form"] = form
    template = "notifications/subscribe_form.html" if request.htmx else "notifications/subscribe_page.html"
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


# Mail clients send the one-click unsubscribe (RFC 8058) as a POST without
# cookies, so there is no CSRF token to check; the signed token in the URL
# is what authorises it, and it names one subscription only.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET asks for confirmation (link scanners follow GETs); POST does it."""
    subscription_id = content.subscription_from_token(token)
    subscription = (
        Subscription.objects.select_related("shipment__brand").filter(pk=subscription_id).first()
        if subscription_id
        else None
    )
    if subscription is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    done = not subscription.active
    if request.method == "POST":
        preferences.unsubscribe(subscription_id=subscription.pk)
        done = True
    response = render(request, "notifications/unsubscribe.html", {"subscription": subscription, "done": done})
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def confirm_subscription(request, token: str):
    """The link in a re-subscription email: GET asks (link scanners follow
    GETs), POST switches the address back on."""
    subscription = confirmations.subscription_from_token(token)
    if subscription is None:
        return render(request, "notifications/confirm_subscription.html", {"invalid": True}, status=404)
    done = subscription.active
    if request.method == "POST":
        subscription = confirmations.confirm(subscription_id=subscription.pk) or subscription
        done = subscription.active
    context = {"subscription": subscription, "shipment": subscription.shipment, "done": done}
    response = render(request, "notifications/confirm_subscription.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _twilio_signature_ok(request) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    params = request.POST.dict()
    candidates = {settings.PUBLIC_BASE_URL + request.get_full_path(), request.build_absolute_uri()}
    return any(validator.validate(url, params, signature) for url in candidates)


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@csrf_exempt
@require_POST
def twilio_inbound(request):
    """Replies to our SMS. STOP and START change what we send; Twilio
    answers the keywords itself, so our reply is empty."""
    if not _twilio_signature_ok(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    sid = request.POST.get("MessageSid", "").strip()
    if not sid or len(sid) > 64:
        # Without its sid a signed message could not be told from its replay.
        return HttpResponse("MessageSid is required.", status=400)
    phone = request.POST.get("From", "").strip()
    text = request.POST.get("Body", "")
    # With Advanced Opt-Out, Twilio names the keyword's meaning itself.
    opt_out_type = request.POST.get("OptOutType", "").upper()
    if opt_out_type in ("STOP", "START"):
        text = opt_out_type
    result = preferences.handle_inbound_sms(sid=sid, phone=phone, text=text)
    if result:
        logger.info("SMS %s from %s…", result.upper(), phone[:4])
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_status(request):
    """Twilio's delivery receipts: delivered, or undelivered/failed."""
    if not _twilio_signature_ok(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    sid = request.POST.get("MessageSid", "")
    status = request.POST.get("MessageStatus", "").lower()
    if not sid or not status:
        return HttpResponse("MessageSid and MessageStatus are required.", status=400)
    known = receipts.record_delivery_receipt(
        provider_message_id=sid, status=status, error_code=request.POST.get("ErrorCode", "")
    )
    if not known:
        logger.info("Delivery receipt for unknown message %s.", sid)
    return HttpResponse(status=204)
