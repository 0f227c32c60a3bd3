"""Re-subscribing an address that unsubscribed: only its owner can.

Anyone with a tracking link can type an address into the page's form, so
an address that unsubscribed from a parcel is not switched back on from
there. It is sent one email with a signed link instead, and hears again
only once that link is followed (GET asks, POST confirms, like the
unsubscribe link). The link expires, works for that one unsubscription
only, and an address is sent at most one such email per window, whatever
the parcel, so the form cannot be used to fill someone's inbox.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from . import content
from .models import Channel, ConfirmationSent, Subscription
from .transports import OutgoingMessage, TransportError, get_transport

logger = logging.getLogger(__name__)

CONFIRM_SALT = "notifications.resubscribe"
# How long a confirmation link works.
CONFIRM_MAX_AGE = timedelta(days=2)
# At most one confirmation email per address in this window.
RESEND_AFTER = timedelta(minutes=10)


class Asked(enum.StrEnum):
    SENT = "confirmation_sent"
    # One went to this address moments ago; it is not sent again.
    RECENT = "confirmation_recent"
    # The mail server refused or was away; nothing is known to have gone.
    FAILED = "confirmation_failed"


def _marker(subscription: Subscription) -> str:
    # Ties a link to the unsubscription it answers: after a later
    # unsubscribe, an old link no longer switches the address back on.
    return subscription.unsubscribed_at.isoformat() if subscription.unsubscribed_at else ""


def confirm_url(subscription: Subscription) -> str:
    token = signing.dumps([subscription.pk, _marker(subscription)], salt=CONFIRM_SALT, compress=True)
    return settings.PUBLIC_BASE_URL + reverse("notifications:confirm_subscription", args=[token])


def subscription_from_token(token: str) -> Subscription | None:
    """The subscription a confirmation link names, while the link is valid:
    signed by us, not expired, and the address still unsubscribed the way it
    was when the link was made (or already confirmed)."""
    try:
        value = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
        return None
    subscription = Subscription.objects.select_related("shipment__brand").filter(pk=value[0]).first()
    if subscription is None or not (subscription.active or _marker(subscription) == value[1]):
        return None
    return subscription


def ask_to_confirm(subscription: Subscription) -> Asked:
    """Email the unsubscribed address a link that switches it back on, at
    most once per address per RESEND_AFTER: the slot is taken before the
    send, so a retried or doubled request finds it taken and sends nothing.
    A failed send keeps the slot too; sending twice is worse than asking the
    customer to try again later."""
    if not _take_slot(subscription.address):
        return Asked.RECENT
    shipment = subscription.shipment
    language = content.language_for(shipment)
    url = confirm_url(subscription)
    with translation.override(language):
        values = {"number": shipment.tracking_number, "brand": shipment.brand.name}
        subject = gettext("Confirm updates about parcel %(number)s") % values
        body = "\n\n".join(
            [
                gettext(
                    "Someone asked for updates about parcel %(number)s from %(brand)s to be sent to this address "
                    "again. You unsubscribed earlier, so we need to hear it from you."
                )
                % values,
                gettext("If it was you, confirm here (the link works for 2 days):") + f"\n{url}",
                gettext("If it was not you, ignore this email: we will send nothing more."),
            ]
        )
    message = OutgoingMessage(
        # Not a planned notification: there is no row, so no id.
        notification_id=0,
        channel=Channel.EMAIL,
        to=subscription.address,
        subject=subject,
        body=body,
        from_name=shipment.brand.name,
        reply_to=shipment.brand.support_email,
    )
    try:
        get_transport(Channel.EMAIL).send(message)
    except TransportError as error:
        logger.warning("A re-subscription confirmation for subscription %s failed: %s", subscription.pk, error)
        return Asked.FAILED
    return Asked.SENT


def _take_slot(address: str) -> bool:
    """Take the address's one confirmation of the window; False if another
    request took it within RESEND_AFTER. The conditional update and the
    unique address make two racing requests take it once between them."""
    now = timezone.now()
    with transaction.atomic():
        if ConfirmationSent.objects.filter(address=address, sent_at__lte=now - RESEND_AFTER).update(sent_at=now):
            return True
        try:
            with transaction.atomic():
                ConfirmationSent.objects.create(address=address, sent_at=now)
        except IntegrityError:
            return False
    return True


def confirm(*, subscription_id: int) -> Subscription | None:
    """Switch an unsubscribed address back on, once its owner followed the
    link; nothing for a parcel whose journey is over."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("shipment")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return None
        if not subscription.active and not subscription.shipment.is_terminal:
            subscription.active, subscription.unsubscribed_at = True, None
            subscription.save(update_fields=["active", "unsubscribed_at"])
    return subscription
