"""Who hears about a shipment: opting in from the tracking page, the
unsubscribe link in every email, and STOP/START replies to our SMS."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from shipments.models import Shipment

from . import confirmations
from .models import Channel, InboundSms, Notification, SmsOptOut, State, Subscription

MAX_OPT_INS_PER_CHANNEL = 3


class SubscribeRefused(ValueError):
    pass


class Subscribed(enum.StrEnum):
    """What an opt-in from the tracking page did, for the page to say."""

    SUBSCRIBED = "subscribed"
    # An address that unsubscribed was asked to confirm (see confirmations).
    CONFIRMATION_SENT = confirmations.Asked.SENT.value
    CONFIRMATION_RECENT = confirmations.Asked.RECENT.value
    CONFIRMATION_FAILED = confirmations.Asked.FAILED.value
    # The number replied STOP: only the number itself can undo that.
    REPLY_START = "reply_start"


@dataclass(frozen=True)
class SubscribeResult:
    outcome: Subscribed
    subscription: Subscription | None = None


def subscribe(*, shipment: Shipment, channel: str, address: str) -> SubscribeResult:
    """Opt an address in to a shipment's updates from its tracking page.

    Whoever holds the link may type any address, so one that unsubscribed
    is not switched back on from here: an email address is asked to confirm
    by email, a number that replied STOP is told to reply START (no text is
    sent to it). A shipment takes a few addresses per channel and no more,
    so a public link cannot be used to send texts to a list of numbers.
    """
    if shipment.is_terminal:
        raise SubscribeRefused(gettext("This parcel's journey is over; there will be no more updates."))
    if channel == Channel.SMS and SmsOptOut.objects.filter(phone=address).exists():
        return SubscribeResult(Subscribed.REPLY_START)
    with transaction.atomic():
        Shipment.objects.select_for_update().filter(pk=shipment.pk).first()
        existing = Subscription.objects.filter(shipment=shipment, channel=channel, address=address).first()
        if existing is None:
            opted_in = Subscription.objects.filter(
                shipment=shipment, channel=channel, source=Subscription.Source.TRACKING_PAGE
            ).count()
            if opted_in >= MAX_OPT_INS_PER_CHANNEL:
                raise SubscribeRefused(gettext("This parcel already has as many subscribers as it can take."))
            created = Subscription.objects.create(
                shipment=shipment, channel=channel, address=address, source=Subscription.Source.TRACKING_PAGE
            )
            return SubscribeResult(Subscribed.SUBSCRIBED, created)
    if existing.active:
        return SubscribeResult(Subscribed.SUBSCRIBED, existing)
    if channel == Channel.SMS:
        return SubscribeResult(Subscribed.REPLY_START, existing)
    # Outside the transaction: the shipment's lock is not held while the
    # mail server is asked.
    existing.shipment = shipment
    return SubscribeResult(Subscribed(confirmations.ask_to_confirm(existing).value), existing)


def unsubscribe(*, subscription_id: int) -> Subscription | None:
    """Stop one address hearing about one shipment, and drop its messages
    not yet sent."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(pk=subscription_id).first()
        if subscription is None:
            return None
        if subscription.active:
            subscription.active, subscription.unsubscribed_at = False, timezone.now()
            subscription.save(update_fields=["active", "unsubscribed_at"])
        Notification.objects.filter(subscription=subscription, state=State.QUEUED).update(
            state=State.SKIPPED, last_error="Unsubscribed."
        )
    return subscription


STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN"})


def handle_inbound_sms(*, sid: str, phone: str, text: str) -> str | None:
    """Act on an inbound SMS once, whatever number of times it is posted:
    Twilio's signature never expires, so a START captured once could undo
    every later STOP. The sid is stored with the reply's effect, in one
    transaction; a replay finds it and changes nothing (None)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                InboundSms.objects.create(sid=sid)
        except IntegrityError:
            return None
        return handle_sms_reply(phone=phone, text=text) if phone else None


def handle_sms_reply(*, phone: str, text: str) -> str | None:
    """Apply a STOP or START keyword from an inbound SMS; anything else is
    left alone. Returns "stop", "start" or None."""
    word = text.strip().split(maxsplit=1)[0].upper() if text.strip() else ""
    if word in STOP_WORDS:
        SmsOptOut.objects.get_or_create(phone=phone)
        Notification.objects.filter(channel=Channel.SMS, recipient=phone, state=State.QUEUED).update(
            state=State.SKIPPED, last_error="Recipient replied STOP."
        )
        return "stop"
    if word in START_WORDS:
        SmsOptOut.objects.filter(phone=phone).delete()
        # The number itself asked to hear again: what it had switched off
        # comes back on (the tracking page sends it here rather than doing so).
        Subscription.objects.filter(channel=Channel.SMS, address=phone, active=False).update(
            active=True, unsubscribed_at=None
        )
        return "start"
    return None
