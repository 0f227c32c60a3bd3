"""What the customer chooses when the door did not work: after a failed
attempt, a new day, a safe place, a neighbour or a pickup point (the
shipment's delivery_choice); before delivery, a note on the address for
support. And where a parcel waits to be collected (its pickup hold).

Each choice reaches everyone who acts on it: the API and the driver's
manifest read it, a Notice tells the brand's webhook in the same
transaction, and the page moves on (save_and_announce)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import alerts, signals
from .alert_models import ActivityAction, AlertActivity
from .alert_rules import AlertKind
from .choice_models import CHOICE_DETAIL_MAX_LENGTH, ChoiceKind, DeliveryChoice, PickupHold, PickupPoint
from .customer import ActionRefused
from .edits import bump_and_announce, save_and_announce
from .models import Alert, AlertState, Brand, Notice, NoticeKind, Shipment
from .statuses import offers_delivery_choice, takes_address_note

log = logging.getLogger(__name__)

# How many delivery days a customer is offered after a failed attempt.
DAYS_OFFERED = 5
# The customer_report problem that an address note is filed as.
ADDRESS_NOTE = "address_note"
ADDRESS_NOTE_MAX_LENGTH = 300


class ChoiceInvalid(ValueError):
    """The input is not one this shipment can take; the message is a code
    the page turns into words."""


def offered_days(brand: Brand, today: dt.date, count: int = DAYS_OFFERED) -> list[dt.date]:
    """The next ``count`` days the brand delivers on, after ``today`` (the
    recipient's today): never today, never a day that has passed. A brand
    with no delivery days offers none."""
    days = set(brand.delivery_days or ())
    if not days:
        return []
    found, day = [], today
    while len(found) < count:
        day += dt.timedelta(days=1)
        if day.weekday() in days:
            found.append(day)
    return found


def active_pickup_points(brand: Brand):
    return PickupPoint.objects.filter(brand=brand, active=True).order_by("name")


def pickup_point_data(point: PickupPoint | None) -> dict | None:
    """A pickup point as the API and webhooks show it. Its address is
    public: it is a shop."""
    if point is None:
        return None
    return {
        "id": point.pk,
        "name": point.name,
        "line1": point.line1,
        "line2": point.line2,
        "postcode": point.postcode,
        "city": point.city,
        "country": point.country,
        "lat": point.lat,
        "lng": point.lng,
        "opening_hours": point.opening_hours,
        "active": point.active,
    }


def choice_of(shipment: Shipment) -> DeliveryChoice | None:
    """The shipment's delivery choice, or None (no query when the caller
    selected it, or it is known to be missing)."""
    try:
        return shipment.delivery_choice
    except DeliveryChoice.DoesNotExist:
        return None


def hold_of(shipment: Shipment) -> PickupHold | None:
    try:
        return shipment.pickup_hold
    except PickupHold.DoesNotExist:
        return None


def choice_data(choice: DeliveryChoice | None) -> dict | None:
    """The delivery choice as the API, the manifest and the webhook show it."""
    if choice is None:
        return None
    return {
        "kind": choice.kind,
        "detail": choice.detail,
        "date": choice.date.isoformat() if choice.date else None,
        "pickup_point": pickup_point_data(choice.pickup_point),
        "updated_at": choice.updated_at.isoformat(),
    }


@dataclass(frozen=True)
class ChoiceOutcome:
    choice: DeliveryChoice
    changed: bool


def _clean(kind: str, detail: str, date: dt.date | None, pickup_point_id: int | None, shipment: Shipment, today):
    """The choice's fields as stored, each kind keeping only its own."""
    detail = " ".join(detail.split())
    if kind == ChoiceKind.NEW_DAY:
        if date is None or date not in offered_days(shipment.brand, today):
            raise ChoiceInvalid("day_not_offered")
        return "", date, None
    if kind in (ChoiceKind.SAFE_PLACE, ChoiceKind.NEIGHBOUR):
        if not detail:
            raise ChoiceInvalid("detail_required")
        if len(detail) > CHOICE_DETAIL_MAX_LENGTH:
            raise ChoiceInvalid("too_long")
        return detail, None, None
    if kind == ChoiceKind.PICKUP_POINT:
        # Another brand's point, or one no longer in use, is no point at all.
        point = active_pickup_points(shipment.brand).filter(pk=pickup_point_id).first() if pickup_point_id else None
        if point is None:
            raise ChoiceInvalid("unknown_pickup_point")
        return "", None, point
    raise ChoiceInvalid("unknown_kind")


def choose_delivery(
    *,
    shipment_id: int,
    kind: str,
    detail: str = "",
    date: dt.date | None = None,
    pickup_point_id: int | None = None,
    today: dt.date,
) -> ChoiceOutcome:
    """Record what the customer wants after a failed attempt, as the
    shipment's one delivery_choice. Offered only after a failed attempt
    (statuses.offers_delivery_choice; ActionRefused otherwise); the day must
    be one offered from ``today`` (the recipient's), the pickup point one of
    the brand's active ones, the text short (ChoiceInvalid otherwise).

    The same choice again changes nothing and tells nobody (changed False);
    a different one replaces it, writes a delivery_choice_updated Notice in
    the same transaction and moves the page on."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().select_related("brand").get(pk=shipment_id)
        if not offers_delivery_choice(shipment.status_enum, shipment.substatus):
            raise ActionRefused("choice_closed")
        detail, date, point = _clean(kind, detail, date, pickup_point_id, shipment, today)
        existing = DeliveryChoice.objects.filter(shipment=shipment).select_related("pickup_point").first()
        if existing is not None and (existing.kind, existing.detail, existing.date, existing.pickup_point_id) == (
            kind,
            detail,
            date,
            point.pk if point else None,
        ):
            return ChoiceOutcome(existing, changed=False)
        now = timezone.now()
        choice, _created = DeliveryChoice.objects.update_or_create(
            shipment=shipment,
            defaults={"kind": kind, "detail": detail, "date": date, "pickup_point": point, "updated_at": now},
        )
        if point is not None:
            # The parcel will wait there; the brand adds the code when it does.
            PickupHold.objects.update_or_create(shipment=shipment, defaults={"pickup_point": point, "updated_at": now})
        notice = Notice.objects.create(
            shipment=shipment,
            kind=NoticeKind.DELIVERY_CHOICE_UPDATED,
            data={"tracking_number": shipment.tracking_number, "delivery_choice": choice_data(choice)},
        )
        signals.announce_notices_on_commit(Shipment, [notice.pk])
        save_and_announce(shipment)
    return ChoiceOutcome(choice, changed=True)


def leave_address_note(*, shipment_id: int, text: str) -> bool:
    """Pass the customer's correction or completion of the address to
    support, never into the address itself (a typo there would send the
    driver astray): a customer_report alert with detail {"problem":
    "address_note", "text"}, or, while a report is open, a note on it.
    The same text again adds nothing: False."""
    text = text.strip()
    if not text:
        raise ChoiceInvalid("detail_required")
    if len(text) > ADDRESS_NOTE_MAX_LENGTH:
        raise ChoiceInvalid("too_long")
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        if not takes_address_note(shipment.status_enum, shipment.substatus):
            raise ActionRefused("address_note_closed")
        now = timezone.now()
        opened = alerts.open_alert(
            shipment=shipment,
            kind=AlertKind.CUSTOMER_REPORT,
            now=now,
            detail={"problem": ADDRESS_NOTE, "text": text},
        )
        if opened is not None:
            return True
        report = Alert.objects.get(shipment=shipment, kind=AlertKind.CUSTOMER_REPORT, state=AlertState.OPEN)
        if report.detail.get("text") == text or report.activity.filter(action=ActivityAction.NOTE, text=text).exists():
            return False
        alerts.add_from_customer(
            alert=report, tracking_number=shipment.tracking_number, problem=ADDRESS_NOTE, text=text, now=now
        )
        # The page's timeline shows that the note went to support.
        save_and_announce(shipment)
    return True


def open_address_notes(shipment_ids: Iterable[int]) -> dict[int, dict]:
    """The customer's latest note on the address of each of these parcels
    whose report to support is still open: {"text", "at"}. The driver's
    manifest and the API show it beside the address, which it never
    changes; once support settle the report it is theirs to act on. Two
    queries however many parcels."""
    ids = list(shipment_ids)
    if not ids:
        return {}
    reports = {
        alert.pk: alert
        for alert in Alert.objects.filter(
            shipment_id__in=ids, kind=AlertKind.CUSTOMER_REPORT, state=AlertState.OPEN
        ).only("shipment_id", "opened_at", "detail")
    }
    notes: dict[int, dict] = {}
    for alert in reports.values():
        if alert.detail.get("problem") == ADDRESS_NOTE and alert.detail.get("text"):
            notes[alert.shipment_id] = {"text": alert.detail["text"], "at": alert.opened_at}
    later = AlertActivity.objects.filter(
        alert_id__in=list(reports), action=ActivityAction.NOTE, data__problem=ADDRESS_NOTE
    ).order_by("at", "pk")
    for row in later.only("alert_id", "at", "text"):
        notes[reports[row.alert_id].shipment_id] = {"text": row.text, "at": row.at}
    return notes


def set_pickup_hold(
    *, shipment: Shipment, pickup_point: PickupPoint, collection_code: str = "", collect_by: dt.date | None = None
) -> PickupHold:
    """Where the parcel waits, the code to collect it with and until when:
    the brand's (API) or staff's word. The point must be the shipment's
    brand's (ChoiceInvalid otherwise)."""
    if pickup_point.brand_id != shipment.brand_id:
        raise ChoiceInvalid("unknown_pickup_point")
    with transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        hold, _created = PickupHold.objects.update_or_create(
            shipment=locked,
            defaults={
                "pickup_point": pickup_point,
                "collection_code": collection_code.strip(),
                "collect_by": collect_by,
                "updated_at": timezone.now(),
            },
        )
        save_and_announce(locked)
    return hold


def cancel_delivery_choice(*, shipment_id: int, user, reason: str) -> DeliveryChoice | None:
    """Staff take back the customer's delivery choice (the neighbour is
    away, the pickup point has closed): the page, the API and the
    driver's manifest drop it, and the brand hears of it once (a
    delivery_choice_updated Notice whose delivery_choice is null). A hold
    that only the choice made (its point, no collection code yet) goes with
    it. Returns the choice taken back, or None when there was none (so a
    second cancel tells nobody)."""
    reason = " ".join(reason.split())
    if not reason:
        raise ChoiceInvalid("reason_required")
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        choice = DeliveryChoice.objects.filter(shipment=shipment).select_related("pickup_point").first()
        if choice is None:
            return None
        if choice.pickup_point_id is not None:
            PickupHold.objects.filter(
                shipment=shipment, pickup_point_id=choice.pickup_point_id, collection_code=""
            ).delete()
        choice.delete()
        notice = Notice.objects.create(
            shipment=shipment,
            kind=NoticeKind.DELIVERY_CHOICE_UPDATED,
            data={"tracking_number": shipment.tracking_number, "delivery_choice": None},
        )
        signals.announce_notices_on_commit(Shipment, [notice.pk])
        save_and_announce(shipment)
    log.info(
        "Staff %s cancelled the delivery choice of shipment %s: %s", getattr(user, "pk", None), shipment_id, reason
    )
    return choice


def extend_pickup_hold(*, shipment_id: int, collect_by: dt.date, today: dt.date, user) -> bool:
    """Staff give the customer longer to collect: a later collect_by, after
    today (the recipient's) and after the one set (ChoiceInvalid
    otherwise). The same date again changes nothing: False."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        hold = PickupHold.objects.filter(shipment=shipment).first()
        if hold is None:
            raise ChoiceInvalid("no_hold")
        if hold.collect_by == collect_by:
            return False
        if collect_by <= today or (hold.collect_by is not None and collect_by < hold.collect_by):
            raise ChoiceInvalid("not_later")
        hold.collect_by, hold.updated_at = collect_by, timezone.now()
        hold.save(update_fields=["collect_by", "updated_at"])
        save_and_announce(shipment)
    log.info(
        "Staff %s extended the pickup hold of shipment %s to %s", getattr(user, "pk", None), shipment_id, collect_by
    )
    return True


def end_pickup_hold(*, shipment_id: int, user, reason: str) -> PickupHold | None:
    """Staff end the parcel's hold at a pickup point (collected, sent back,
    moved): the page stops showing the point and the code. Returns the hold
    ended, or None when there was none."""
    reason = " ".join(reason.split())
    if not reason:
        raise ChoiceInvalid("reason_required")
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        hold = PickupHold.objects.filter(shipment=shipment).select_related("pickup_point").first()
        if hold is None:
            return None
        hold.delete()
        save_and_announce(shipment)
    log.info("Staff %s ended the pickup hold of shipment %s: %s", getattr(user, "pk", None), shipment_id, reason)
    return hold


class PickupPointRefused(ValueError):
    """The pickup point cannot be saved as given: ``errors`` maps each field
    to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))
        self.errors = errors


def create_pickup_point(*, brand: Brand, **fields) -> PickupPoint:
    """A new pickup point of the brand, checked by the model's own rules
    (coordinates, opening hours, one name per brand)."""
    point = PickupPoint(brand=brand, **fields)
    try:
        point.full_clean()
    except ValidationError as error:
        raise PickupPointRefused(error.message_dict) from None
    point.save()
    return point


def save_pickup_point(*, point: PickupPoint) -> PickupPoint:
    """Save a staff edit of a pickup point; the pages of the parcels that
    name it (a choice or a hold) show the change at once."""
    with transaction.atomic():
        point.save()
        bump_and_announce(
            Shipment.objects.filter(Q(delivery_choice__pickup_point=point) | Q(pickup_hold__pickup_point=point)),
            sender=PickupPoint,
        )
    return point
