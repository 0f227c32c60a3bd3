"""The customer's choices when the door did not work: what happens after a
failed attempt (POST /t/<token>/choice/), and a note on the address for
support before delivery (POST /t/<token>/address-note/). Protected and
limited like the problem report (pages.tracking.report): CSRF, counted per
address before the token is looked up, then per link."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from shipments import limiter
from shipments.choices import ChoiceInvalid, choose_delivery, leave_address_note
from shipments.customer import ActionRefused
from shipments.links import is_expired
from tracking_portal.clients import client_address

from .choice_forms import AddressNoteForm, DeliveryChoiceForm
from .choice_presenters import recipient_today
from .tracking import _actions_page, _expired, _see_other, _shipment_or_404

# A customer chooses once, maybe changes their mind twice; these are far
# above that and keep a script from holding shipments' locks.
CHOICE_ADDRESS_LIMIT = limiter.per_seconds(10, 600, namespace="choice-address")
CHOICE_LINK_LIMIT = limiter.per_seconds(20, 3600, namespace="choice-link")

CHOICE_ERRORS = {
    "day_not_offered": ("date", _("That day is not one we can deliver on. Please choose one of the days shown.")),
    "unknown_pickup_point": ("pickup_point", _("Please choose one of the pickup points shown.")),
    "too_long": (None, _("That is too long. Please keep it short.")),
    "detail_required": (None, _("Please fill in the box.")),
    "unknown_kind": (None, _("Please choose one of the options shown.")),
}
CLOSED = {
    "choice_closed": _("Your parcel is no longer waiting for a new delivery, so this choice can't be made now."),
    "address_note_closed": _("Your address can no longer be changed for this delivery. Please contact support."),
}


def _limited(request, shipment):
    """The seconds to wait, or 0: per address first (guessing tokens costs
    too), then per link."""
    return limiter.hit(CHOICE_LINK_LIMIT, shipment.public_token)


def _choice_errors(form: DeliveryChoiceForm) -> dict:
    """The failed form's errors, for the option it came from."""
    kind = form.data.get("kind", "")
    field = {"safe_place": "safe_place", "neighbour": "neighbour"}.get(kind, "")
    return {
        "kind": kind,
        "fields": {name: errors for name, errors in form.errors.items() if name not in ("__all__", "kind")},
        "non_field": [*form.non_field_errors(), *form.errors.get("kind", [])],
        "value": form.data.get(field, "") if field else "",
    }


def _too_many(request, shipment, wait: int):
    response = _actions_page(
        request, shipment, status=429, action_error=_("Too many requests in a short time. Please try again later.")
    )
    response["Retry-After"] = str(wait)
    return response


@require_POST
def delivery_choice(request, token: str):
    """The customer's choice after a failed attempt, through the one
    service (shipments.choices.choose_delivery). The same choice again
    changes nothing and says so."""
    wait = limiter.hit(CHOICE_ADDRESS_LIMIT, client_address(request) or "unknown")
    shipment = _shipment_or_404(token)
    if is_expired(shipment):
        return _expired(request, shipment)
    wait = wait or _limited(request, shipment)
    if wait:
        return _too_many(request, shipment, wait)
    form = DeliveryChoiceForm(request.POST)
    if not form.is_valid():
        return _actions_page(request, shipment, status=400, choice_errors=_choice_errors(form))
    try:
        outcome = choose_delivery(
            shipment_id=shipment.pk,
            kind=form.cleaned_data["kind"],
            detail=form.detail,
            date=form.cleaned_data["date"],
            pickup_point_id=form.cleaned_data["pickup_point"],
            today=recipient_today(shipment),
        )
    except ActionRefused as refusal:
        return _actions_page(request, _shipment_or_404(token), status=409, action_error=CLOSED[str(refusal)])
    except ChoiceInvalid as invalid:
        field, message = CHOICE_ERRORS[str(invalid)]
        # A safe place's or a neighbour's text is its own field's fault.
        field = field or {"safe_place": "safe_place", "neighbour": "neighbour"}.get(form.cleaned_data["kind"])
        form.add_error(field if field in form.fields else None, message)
        return _actions_page(request, shipment, status=400, choice_errors=_choice_errors(form))
    if not outcome.changed:
        return _actions_page(request, shipment, choice_unchanged=True)
    return _see_other(shipment.get_absolute_url() + "#status")


@require_POST
def address_note(request, token: str):
    """The customer's correction or completion of the address, passed to
    support (shipments.choices.leave_address_note), never into the
    address. The same note again adds nothing and says so."""
    wait = limiter.hit(CHOICE_ADDRESS_LIMIT, client_address(request) or "unknown")
    shipment = _shipment_or_404(token)
    if is_expired(shipment):
        return _expired(request, shipment)
    wait = wait or _limited(request, shipment)
    if wait:
        return _too_many(request, shipment, wait)
    form = AddressNoteForm(request.POST)
    if not form.is_valid():
        return _actions_page(request, shipment, status=400, address_form=form)
    try:
        added = leave_address_note(shipment_id=shipment.pk, text=form.cleaned_data["note"])
    except ActionRefused as refusal:
        return _actions_page(request, _shipment_or_404(token), status=409, action_error=CLOSED[str(refusal)])
    except ChoiceInvalid as invalid:
        form.add_error("note", CHOICE_ERRORS[str(invalid)][1])
        return _actions_page(request, shipment, status=400, address_form=form)
    return _actions_page(request, shipment, address_noted="new" if added else "again")
