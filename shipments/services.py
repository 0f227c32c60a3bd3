"""Everything that writes shipments. ``record_event`` is the one status writer."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import signals
from .models import Brand, EventSource, Shipment, StatusChange, TrackingEvent
from .statuses import Status, Substatus, fold


class EventRejected(ValueError):
    """The event cannot be recorded as given; the message says why."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NewEvent:
    """An event as a source reports it, before it is stored."""

    status: str
    occurred_at: datetime
    source: str = EventSource.API
    external_id: str = ""
    substatus: str = ""
    carrier_code: str = ""
    description: str = ""
    location_city: str = ""
    location_lat: float | None = None
    location_lng: float | None = None
    is_correction: bool = False
    corrected_by: object | None = None
    correction_reason: str = ""

    def identity(self) -> str:
        """The external id, or one derived from the content when the source
        gave none, so that a resent copy of the same report is a duplicate."""
        if self.external_id:
            return self.external_id
        content = "|".join(
            [self.status, self.substatus, self.occurred_at.isoformat(), self.carrier_code, self.description]
        )
        return "content:" + hashlib.sha256(content.encode()).hexdigest()[:40]


@dataclass
class Recorded:
    event: TrackingEvent
    created: bool
    status_change: StatusChange | None = None


@dataclass
class BatchOutcome:
    """What one shipment's events did: each event stored or found, and the
    status change if there was one."""

    events: list[Recorded] = field(default_factory=list)
    status_change: StatusChange | None = None


def validate_event(event: NewEvent) -> None:
    if event.status not in Status.__members__.values():
        raise EventRejected(f"Unknown status {event.status!r}.", field="status")
    if event.substatus and event.substatus not in Substatus.__members__.values():
        raise EventRejected(f"Unknown substatus {event.substatus!r}.", field="substatus")
    if timezone.is_naive(event.occurred_at):
        raise EventRejected("occurred_at needs a time zone offset.", field="occurred_at")
    if event.source not in EventSource.values:
        raise EventRejected(f"Unknown source {event.source!r}.", field="source")
    if event.location_lat is not None and not -90 <= event.location_lat <= 90:
        raise EventRejected("Latitude must be between -90 and 90.", field="location.lat")
    if event.location_lng is not None and not -180 <= event.location_lng <= 180:
        raise EventRejected("Longitude must be between -180 and 180.", field="location.lng")
    if event.is_correction and (
        event.source != EventSource.STAFF or event.corrected_by is None or not event.correction_reason.strip()
    ):
        raise EventRejected("A correction needs a staff author and a reason.", field="correction_reason")


def record_event(*, shipment_id: int, event: NewEvent) -> Recorded:
    """Append one event to a shipment's timeline and apply the status rules.

    Keeps these rules, in one transaction under the shipment's row lock:
    an event already stored (same source and external id) is a no-op; the
    status is the fold of all events in occurred_at order, so late and
    out-of-order events never move it backwards; a terminal status is left
    only by a staff correction; each change of status writes one
    StatusChange (the outbox) in the same transaction.
    """
    outcome = record_events(shipment_id=shipment_id, events=[event])
    recorded = outcome.events[0]
    recorded.status_change = outcome.status_change
    return recorded


def record_events(*, shipment_id: int, events: Sequence[NewEvent]) -> BatchOutcome:
    """``record_event`` for several events of one shipment at once: one lock,
    one pass of the rules, at most one StatusChange (the net change)."""
    for event in events:
        validate_event(event)
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        return apply_events(shipment, events)


def apply_events(shipment: Shipment, events: Sequence[NewEvent]) -> BatchOutcome:
    """The body of ``record_events``, for a caller that already holds the
    shipment's row lock inside a transaction (the API's batch path locks many
    shipments at once and calls this for each)."""
    outcome = BatchOutcome()
    identities = [event.identity() for event in events]
    existing = {
        (e.source, e.external_id): e
        for e in TrackingEvent.objects.filter(shipment=shipment, external_id__in=set(identities))
    }
    to_insert: dict[tuple[str, str], TrackingEvent] = {}
    for event, identity in zip(events, identities, strict=True):
        key = (event.source, identity)
        if key in existing:
            outcome.events.append(Recorded(existing[key], created=False))
        elif key in to_insert:
            outcome.events.append(Recorded(to_insert[key], created=False))
        else:
            row = TrackingEvent(
                shipment=shipment,
                occurred_at=event.occurred_at,
                status=event.status,
                substatus=event.substatus,
                carrier_code=event.carrier_code,
                description=event.description,
                location_city=event.location_city,
                location_lat=event.location_lat,
                location_lng=event.location_lng,
                source=event.source,
                external_id=identity,
                is_correction=event.is_correction,
                corrected_by=event.corrected_by,
                correction_reason=event.correction_reason,
            )
            to_insert[key] = row
            outcome.events.append(Recorded(row, created=True))
    if not to_insert:
        return outcome

    new_rows = list(to_insert.values())
    TrackingEvent.objects.bulk_create(new_rows)
    outcome.status_change = _apply_to_shipment(shipment, new_rows)
    _announce_on_commit(shipment, outcome.status_change)
    return outcome


def _apply_to_shipment(shipment: Shipment, new_rows: list[TrackingEvent]) -> StatusChange | None:
    old_status = shipment.status_enum
    earliest_new = min(row.occurred_at for row in new_rows)
    if shipment.last_event_at is None or earliest_new > shipment.last_event_at:
        # Every new event comes after all the known ones: carry on from the
        # current status rather than replaying the whole timeline.
        outcome = fold(new_rows, initial=old_status)
    else:
        outcome = fold(TrackingEvent.objects.filter(shipment=shipment))

    now = timezone.now()
    update_fields = ["version", "last_event_at", "updated_at"]
    shipment.version += 1
    newest = max(row.occurred_at for row in new_rows)
    shipment.last_event_at = max(newest, shipment.last_event_at) if shipment.last_event_at else newest
    deciding = outcome.deciding_event
    if deciding is not None and deciding.substatus != shipment.substatus:
        shipment.substatus = deciding.substatus
        update_fields.append("substatus")

    change = None
    if outcome.status != old_status:
        shipment.status = outcome.status
        shipment.status_changed_at = now
        shipment.delivered_at = deciding.occurred_at if outcome.status == Status.DELIVERED else None
        update_fields += ["status", "status_changed_at", "delivered_at"]
        change = StatusChange.objects.create(
            shipment=shipment,
            event=deciding,
            old_status=old_status,
            new_status=outcome.status,
            substatus=shipment.substatus,
            changed_by=deciding.corrected_by if deciding.is_correction else None,
            reason=deciding.correction_reason,
        )
    shipment.save(update_fields=update_fields)
    return change


def correct_status(*, shipment_id: int, status: str, user, reason: str) -> Recorded:
    """The audited way out of a terminal status (or any fix by hand): a staff
    event that says who and why, applied by the same rules as every other.

    It takes effect after every event known now, even one stamped ahead of
    our clock by a source, so that the correction is what the status shows.
    """
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        occurred_at = timezone.now()
        if shipment.last_event_at and shipment.last_event_at >= occurred_at:
            occurred_at = shipment.last_event_at + timedelta(microseconds=1)
        correction = NewEvent(
            status=status,
            occurred_at=occurred_at,
            source=EventSource.STAFF,
            external_id=f"correction-{uuid.uuid4().hex}",
            description=reason,
            is_correction=True,
            corrected_by=user,
            correction_reason=reason,
        )
        validate_event(correction)
        outcome = apply_events(shipment, [correction])
    recorded = outcome.events[0]
    recorded.status_change = outcome.status_change
    return recorded


SHIPMENT_FIELDS = frozenset(
    f.name for f in Shipment._meta.get_fields() if getattr(f, "editable", False) and f.concrete and not f.primary_key
) - {"brand", "tracking_number", "status", "substatus", "status_changed_at", "last_event_at", "delivered_at", "version"}


def create_shipment(*, brand: Brand, tracking_number: str, **fields) -> tuple[Shipment, bool]:
    """Create a shipment, or return the brand's existing one with that
    tracking number unchanged (a retried create must not make a second)."""
    unknown = set(fields) - SHIPMENT_FIELDS
    if unknown:
        raise TypeError(f"create_shipment() got unknown fields: {', '.join(sorted(unknown))}")
    existing = Shipment.objects.filter(brand=brand, tracking_number=tracking_number).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            return Shipment.objects.create(brand=brand, tracking_number=tracking_number, **fields), True
    except IntegrityError:
        return Shipment.objects.get(brand=brand, tracking_number=tracking_number), False


def attach_proof_of_delivery(*, shipment_id: int, received_by: str = "", photo=None, signature=None) -> Shipment:
    """Attach proof of delivery. It never changes the status (events do), but
    the page shows it, so the shipment's version moves on."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        update_fields = ["updated_at", "version"]
        if received_by:
            shipment.proof_received_by = received_by
            update_fields.append("proof_received_by")
        if photo is not None:
            shipment.proof_photo = photo
            update_fields.append("proof_photo")
        if signature is not None:
            shipment.proof_signature = signature
            update_fields.append("proof_signature")
        shipment.version += 1
        shipment.save(update_fields=update_fields)
        _announce_on_commit(shipment, None)
    return shipment


def _announce_on_commit(shipment: Shipment, status_change: StatusChange | None) -> None:
    shipment_id, version = shipment.pk, shipment.version
    status_change_id = status_change.pk if status_change else None
    transaction.on_commit(
        lambda: signals.shipment_changed.send(
            sender=Shipment, shipment_id=shipment_id, version=version, status_change_id=status_change_id
        )
    )
