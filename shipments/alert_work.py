"""What support staff do with an alert from the "Needs attention" queue:
take it, let it go, leave a note, write to the customer from a template,
resolve it with a reason.

Each change locks the alert's row, re-reads it and writes its
AlertActivity (the audit trail) in the same transaction, so two agents
clicking at once take turns and the trail says who won. Resolving goes
through ``alerts.resolve_alert``, the alerts' one writer. Writing to the
customer leaves a ``customer_contacted`` Notice (the outbox) that the
notifications app plans into the customer's SMS and email; it is announced
after commit like every other Notice.

Callers (the admin) have already checked that the user may see and change
the alert; these functions keep the rules that hold whoever calls them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import alerts, selectors, signals
from .alert_models import ActivityAction, ContactTopic, Resolution
from .models import Alert, AlertActivity, AlertState, Notice, NoticeKind, Shipment

NOTE_MAX_LENGTH = AlertActivity._meta.get_field("text").max_length
SMS, EMAIL = "sms", "email"
CONTACT_CHANNELS = (SMS, EMAIL)
# A second message on the same topic about the same alert within this long
# is a double click or a replayed form, not a new conversation.
CONTACT_REPEAT_AFTER = timedelta(minutes=10)
STAFF_REASONS = frozenset(Resolution.values) - {Resolution.RULE}


class Refused(Exception):
    """What staff asked for cannot be done; the message says why, in
    words for the person who asked."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _locked(alert: Alert) -> Alert:
    """The alert's row, locked for the rest of the transaction and read
    afresh (another agent may have changed it since the page was drawn)."""
    return Alert.objects.select_for_update().get(pk=alert.pk)


def _record(alert: Alert, user, action: str, text: str = "", at: datetime | None = None, **data) -> AlertActivity:
    return AlertActivity.objects.create(
        alert=alert, user=user, action=action, text=text, at=at or timezone.now(), data=data
    )


def _refuse_if_resolved(alert: Alert) -> None:
    if alert.state != AlertState.OPEN:
        raise Refused(_("This alert is resolved already."))


def assign(*, alert: Alert, user) -> bool:
    """Give the alert to this user (taking it from whoever had it). A user
    who is not staff of the alert's brand cannot be given it. Returns
    whether anything changed: assigning it to its assignee does nothing."""
    brand_id = Shipment.objects.values_list("brand_id", flat=True).get(pk=alert.shipment_id)
    if not selectors.brands_visible_to(user).filter(pk=brand_id).exists():
        raise Refused(_("Only the brand's own staff can take this alert."))
    with transaction.atomic():
        current = _locked(alert)
        _refuse_if_resolved(current)
        if current.assigned_to_id == user.pk:
            return False
        previous = current.assigned_to_id
        Alert.objects.filter(pk=alert.pk).update(assigned_to=user, updated_at=timezone.now())
        _record(current, user, ActivityAction.ASSIGNED, assigned_to=user.pk, previous=previous)
    alert.assigned_to = user
    return True


def unassign(*, alert: Alert, user) -> bool:
    """Leave the alert to nobody. Returns whether it had anyone."""
    with transaction.atomic():
        current = _locked(alert)
        _refuse_if_resolved(current)
        if current.assigned_to_id is None:
            return False
        Alert.objects.filter(pk=alert.pk).update(assigned_to=None, updated_at=timezone.now())
        _record(current, user, ActivityAction.UNASSIGNED, previous=current.assigned_to_id)
    alert.assigned_to = None
    return True


def add_note(*, alert: Alert, user, text: str) -> AlertActivity:
    """A note on the trail, open or resolved (what was learnt afterwards
    belongs there too). Blank notes and notes past the trail's length are
    refused, never cut."""
    text = text.strip()
    if not text:
        raise Refused(_("A note needs some text."))
    if len(text) > NOTE_MAX_LENGTH:
        raise Refused(_("A note is at most %(n)d characters.") % {"n": NOTE_MAX_LENGTH})
    with transaction.atomic():
        current = _locked(alert)
        return _record(current, user, ActivityAction.NOTE, text)


def available_channels(shipment: Shipment) -> list[str]:
    """The channels the customer can be written to on: what they left."""
    return [channel for channel, known in ((SMS, shipment.recipient_phone), (EMAIL, shipment.recipient_email)) if known]


def contact_customer(
    *, alert: Alert, user, topic: str, channels: Collection[str], now: datetime | None = None
) -> Notice:
    """Write to the customer about an open alert from one of the topic
    templates, on the channels chosen among those they left. The message
    itself is the notifications app's (its wording, the customer's
    language, opt-outs and quiet hours); this leaves the Notice it plans
    from and the trail's "contacted" row, in one transaction. The same
    topic again within CONTACT_REPEAT_AFTER is refused, so a double click
    sends one message."""
    now = now or timezone.now()
    if topic not in ContactTopic.values:
        raise Refused(_("Choose what to tell the customer."))
    chosen = sorted(set(channels))
    if not chosen:
        raise Refused(_("Choose SMS, email or both."))
    with transaction.atomic():
        current = _locked(alert)
        _refuse_if_resolved(current)
        shipment = Shipment.objects.only("recipient_phone", "recipient_email").get(pk=current.shipment_id)
        missing = set(chosen) - set(available_channels(shipment))
        if missing:
            raise Refused(_("The customer left no way to reach them by %(c)s.") % {"c": ", ".join(sorted(missing))})
        recent = current.activity.filter(action=ActivityAction.CONTACTED, at__gte=now - CONTACT_REPEAT_AFTER)
        if any(row.data.get("topic") == topic for row in recent):
            raise Refused(_("The customer was sent this message a few minutes ago."))
        notice = Notice.objects.create(
            shipment_id=current.shipment_id,
            kind=NoticeKind.CUSTOMER_CONTACTED,
            data={"alert_id": current.pk, "topic": topic, "channels": chosen, "user_id": user.pk},
        )
        _record(current, user, ActivityAction.CONTACTED, at=now, topic=topic, channels=chosen, notice_id=notice.pk)
        signals.announce_notices_on_commit(Alert, [notice.pk])
    return notice


def resolve(*, alert: Alert, user, reason: str, note: str = "", now: datetime | None = None) -> bool:
    """Resolve the alert with one of the staff's reasons (never the rule's
    own) and an optional note. Returns False, and writes nothing, when it
    was resolved already."""
    if reason not in STAFF_REASONS:
        raise Refused(_("Choose why the alert is resolved."))
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise Refused(_("A note is at most %(n)d characters.") % {"n": NOTE_MAX_LENGTH})
    now = now or timezone.now()
    with transaction.atomic():
        current = _locked(alert)
        if current.state != AlertState.OPEN:
            return False
        if not alerts.resolve_alert(alert=current, now=now, user=user, reason=reason, note=note):
            return False
    alert.refresh_from_db()
    return True
