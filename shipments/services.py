"""Everything that writes shipments. ``record_event`` is the one status writer."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import bounds, bulk, signals
from .edits import save_and_announce
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

    def only_event(self) -> Recorded:
        """The outcome of a single event, carrying the status change."""
        (recorded,) = self.events
        recorded.status_change = self.status_change
        return recorded


def validate_event(event: NewEvent) -> None:
    """An event is recorded only with a known status, substatus and source,
    an aware time within the range the portal stores (shipments.bounds),
    coordinates within their ranges, and, for a correction, a staff author
    and a reason."""
    if event.status not in Status.__members__.values():
        raise EventRejected(f"Unknown status {event.status!r}.", field="status")
    if event.substatus and event.substatus not in Substatus.__members__.values():
        raise EventRejected(f"Unknown substatus {event.substatus!r}.", field="substatus")
    if timezone.is_naive(event.occurred_at):
        raise EventRejected("occurred_at needs a time zone offset.", field="occurred_at")
    if not bounds.in_time_range(event.occurred_at):
        raise EventRejected("occurred_at is out of range.", field="occurred_at")
    if event.source not in EventSource.values:
        raise EventRejected(f"Unknown source {event.source!r}.", field="source")
    if event.location_lat is not None and not bounds.is_latitude(event.location_lat):
        raise EventRejected(bounds.LATITUDE_ERROR, field="location.lat")
    if event.location_lng is not None and not bounds.is_longitude(event.location_lng):
        raise EventRejected(bounds.LONGITUDE_ERROR, field="location.lng")
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
    return outcome.only_event()


def record_events(*, shipment_id: int, events: Sequence[NewEvent]) -> BatchOutcome:
    """``record_event`` for several events of one shipment at once: one lock,
    one pass of the rules, at most one StatusChange (the net change)."""
    for event in events:
        validate_event(event)
    with transaction.atomic():
        return apply_events(_locked_shipment(shipment_id), events)


# On PostgreSQL the locking reads on the path of every event are written out
# (shipments/bulk.py): the ORM took longer to compile each than to run it
# (bench/record_event.py). tests/shipments/test_bulk.py holds each to what
# the ORM reads.
def _locked_shipment(shipment_id: int) -> Shipment:
    if connection.vendor != "postgresql":
        return Shipment.objects.select_for_update().get(pk=shipment_id)
    found = bulk.select(Shipment, None, "{id} = %s FOR UPDATE", [shipment_id])
    if not found:
        raise Shipment.DoesNotExist(f"No shipment with id {shipment_id}.")
    return found[0]


def _locked_by_number(brand: Brand, tracking_numbers: set[str]) -> list[Shipment]:
    """The brand's shipments with these tracking numbers, locked in id order,
    with what the rules of record_event read and write."""
    if connection.vendor != "postgresql":
        return list(
            Shipment.objects.select_for_update()
            .filter(brand=brand, tracking_number__in=tracking_numbers)
            .only(*BATCH_FIELDS)
            .order_by("pk")
        )
    where = "{brand} = %s AND {tracking_number} = ANY(%s) ORDER BY {id} FOR UPDATE"
    return bulk.select(Shipment, frozenset(BATCH_FIELDS), where, [brand.pk, list(tracking_numbers)])


class UnknownShipment(EventRejected):
    """No shipment of this brand has the tracking number (another brand's
    counts as none: a brand learns nothing of another's parcels)."""


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item of a brand's batch: ``accepted``,
    ``duplicate`` or ``error`` (with the reason)."""

    result: str
    error: EventRejected | None = None


def record_brand_events(*, brand: Brand, items: Sequence[tuple[str, NewEvent]]) -> list[ItemOutcome]:
    """``record_event`` for a batch of (tracking number, event) pairs of one
    brand, by the same rules, in one transaction.

    Each item is checked first; an item that fails (unknown tracking number
    for this brand, bad status, naive timestamp, coordinates out of range)
    is answered as an error and the others are still written. The batch's
    shipments are locked together in id order, so two batches touching the
    same shipments wait for each other instead of deadlocking.
    """
    results: list[ItemOutcome | None] = [None] * len(items)
    valid: list[int] = []
    for index, (_, event) in enumerate(items):
        try:
            validate_event(event)
        except EventRejected as rejected:
            results[index] = ItemOutcome("error", rejected)
        else:
            valid.append(index)

    if valid:
        with transaction.atomic():
            wanted = {items[index][0] for index in valid}
            by_number = {shipment.tracking_number: shipment for shipment in _locked_by_number(brand, wanted)}
            grouped: dict[int, tuple[Shipment, list[int]]] = {}
            for index in valid:
                tracking_number = items[index][0]
                shipment = by_number.get(tracking_number)
                if shipment is None:
                    results[index] = ItemOutcome(
                        "error", UnknownShipment(f"No shipment {tracking_number!r}.", field="tracking_number")
                    )
                else:
                    grouped.setdefault(shipment.pk, (shipment, []))[1].append(index)
            batch = [(shipment, [items[i][1] for i in indices]) for shipment, indices in grouped.values()]
            outcomes = apply_events_to_shipments(batch)
            for (_, indices), outcome in zip(grouped.values(), outcomes, strict=True):
                for index, recorded in zip(indices, outcome.events, strict=True):
                    results[index] = ItemOutcome("accepted" if recorded.created else "duplicate")
    return results


def apply_events(shipment: Shipment, events: Sequence[NewEvent]) -> BatchOutcome:
    """The body of ``record_events``, for a caller that already holds the
    shipment's row lock inside a transaction."""
    return apply_events_to_shipments([(shipment, events)])[0]


def apply_events_to_shipments(batch: Sequence[tuple[Shipment, Sequence[NewEvent]]]) -> list[BatchOutcome]:
    """The rules of ``record_event`` for many shipments at once, for a caller
    that holds all their row locks inside one transaction.

    The single path is this with one shipment, so both run the same rules:
    one query finds the events already stored, one insert adds the new ones,
    the status rules run per shipment, then one insert writes the
    StatusChanges and one update the shipments. Each shipment appears once.
    """
    outcomes = [BatchOutcome() for _ in batch]
    # Each shipment's events once per identity, all offered to one insert
    # that leaves out those already stored: a batch of new events (the usual
    # case) costs no read to find duplicates.
    keys = [[(event.source, event.identity()) for event in events] for _, events in batch]
    candidates: list[dict[tuple[str, str], TrackingEvent]] = []
    for (shipment, events), event_keys in zip(batch, keys, strict=True):
        offered: dict[tuple[str, str], TrackingEvent] = {}
        for event, key in zip(events, event_keys, strict=True):
            if key not in offered:
                offered[key] = _new_row(shipment, event, key[1])
        candidates.append(offered)
    all_offered = [row for offered in candidates for row in offered.values()]
    now = timezone.now()
    bulk.insert(all_offered, now, unless_present=EVENT_IDENTITY)
    stored = {
        bulk.key(row, EVENT_IDENTITY): row for row in _stored_events([row for row in all_offered if row.pk is None])
    }

    new_rows_per_shipment: list[list[TrackingEvent]] = []
    for (shipment, _), event_keys, offered, outcome in zip(batch, keys, candidates, outcomes, strict=True):
        seen: set[tuple[str, str]] = set()
        for key in event_keys:
            row = offered[key]
            if row.pk is None:
                outcome.events.append(Recorded(stored[(shipment.pk, *key)], created=False))
            else:
                outcome.events.append(Recorded(row, created=key not in seen))
            seen.add(key)
        new_rows_per_shipment.append([row for row in offered.values() if row.pk is not None])
    if not any(new_rows_per_shipment):
        return outcomes

    touched = [
        (shipment, rows, outcome)
        for (shipment, _), rows, outcome in zip(batch, new_rows_per_shipment, outcomes, strict=True)
        if rows
    ]
    timelines = _timelines_to_replay([(shipment, rows) for shipment, rows, _ in touched])
    changes: list[StatusChange] = []
    for shipment, rows, outcome in touched:
        outcome.status_change = _apply_to_shipment(shipment, rows, timelines.get(shipment.pk), now)
        if outcome.status_change is not None:
            changes.append(outcome.status_change)
    bulk.insert(changes, now)
    _save_shipment_states([shipment for shipment, _, _ in touched])
    signals.announce_on_commit(
        Shipment,
        [
            signals.ShipmentChange(
                shipment.pk,
                shipment.version,
                outcome.status_change.pk if outcome.status_change else None,
                token=shipment.public_token,
                old_status=outcome.status_change.old_status if outcome.status_change else shipment.status,
                status=shipment.status,
            )
            for shipment, _, outcome in touched
        ],
    )
    return outcomes


# What makes an event the same event: the source's own id for it.
EVENT_IDENTITY = ("shipment", "source", "external_id")


def _stored_events(refused: list[TrackingEvent]) -> list[TrackingEvent]:
    """The stored events that these rows, left out as already present,
    would have duplicated."""
    return bulk.matching(TrackingEvent, EVENT_IDENTITY, {bulk.key(row, EVENT_IDENTITY) for row in refused})


def _new_row(shipment: Shipment, event: NewEvent, identity: str) -> TrackingEvent:
    return TrackingEvent(
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


def _needs_replay(shipment: Shipment, new_rows: list[TrackingEvent]) -> bool:
    # Events that all come after every known one can carry on from the
    # current status; an earlier one means folding the whole timeline again.
    earliest_new = min(row.occurred_at for row in new_rows)
    return shipment.last_event_at is not None and earliest_new <= shipment.last_event_at


def _timelines_to_replay(touched: list[tuple[Shipment, list[TrackingEvent]]]) -> dict[int, list[TrackingEvent]]:
    ids = [shipment.pk for shipment, rows in touched if _needs_replay(shipment, rows)]
    timelines: dict[int, list[TrackingEvent]] = {pk: [] for pk in ids}
    if ids:
        for row in TrackingEvent.objects.filter(shipment_id__in=ids):
            timelines[row.shipment_id].append(row)
    return timelines


def _apply_to_shipment(
    shipment: Shipment, new_rows: list[TrackingEvent], timeline: list[TrackingEvent] | None, now: datetime
) -> StatusChange | None:
    """Move one shipment's state on by its new events, in memory; the caller
    writes the shipment and the returned StatusChange."""
    old_status = shipment.status_enum
    outcome = fold(timeline) if timeline is not None else fold(new_rows, initial=old_status)

    shipment.version += 1
    shipment.updated_at = now
    newest = max(row.occurred_at for row in new_rows)
    shipment.last_event_at = max(newest, shipment.last_event_at) if shipment.last_event_at else newest
    deciding = outcome.deciding_event
    if deciding is not None:
        shipment.substatus = deciding.substatus
        if outcome.status == Status.DELIVERED:
            # A late, earlier delivery scan keeps the status but moves the
            # time: delivered_at, like the status, follows from the set.
            shipment.delivered_at = deciding.occurred_at

    if outcome.status == old_status:
        return None
    shipment.status = outcome.status
    shipment.status_changed_at = now
    shipment.delivered_at = deciding.occurred_at if outcome.status == Status.DELIVERED else None
    return StatusChange(
        shipment=shipment,
        event=deciding,
        old_status=old_status,
        new_status=outcome.status,
        substatus=shipment.substatus,
        changed_by_id=deciding.corrected_by_id if deciding.is_correction else None,
        reason=deciding.correction_reason,
    )


STATE_FIELDS = ["status", "substatus", "status_changed_at", "last_event_at", "delivered_at", "version", "updated_at"]
# What the batch path reads of each shipment: its state, and what the
# announcement after commit tells the live pages.
BATCH_FIELDS = ["tracking_number", "public_token", *STATE_FIELDS]


def _save_shipment_states(shipments: list[Shipment]) -> None:
    # One statement for one shipment too: the ORM's save() took longer to
    # build its UPDATE than to run it (bench/record_event.py).
    # _apply_to_shipment set updated_at.
    bulk.update(shipments, STATE_FIELDS)


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
    return outcome.only_event()


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
            first_window_end = fields.get("promised_window_end")
            return Shipment.objects.create(
                brand=brand, tracking_number=tracking_number, first_window_end=first_window_end, **fields
            ), True
    except IntegrityError:
        return Shipment.objects.get(brand=brand, tracking_number=tracking_number), False


def attach_proof_of_delivery(*, shipment_id: int, received_by: str = "", photo=None, signature=None) -> Shipment:
    """Attach proof of delivery. It never changes the status (events do), but
    the page shows it, so the shipment's version moves on."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=shipment_id)
        update_fields = []
        if received_by:
            shipment.proof_received_by = received_by
            update_fields.append("proof_received_by")
        if photo is not None:
            shipment.proof_photo = photo
            update_fields.append("proof_photo")
        if signature is not None:
            shipment.proof_signature = signature
            update_fields.append("proof_signature")
        save_and_announce(shipment, update_fields)
    return shipment
