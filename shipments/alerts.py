"""The one writer of alerts: open, resolve, and evaluate the rules.

``alert_rules.decide`` says from plain facts which kinds should be open;
``evaluate_alerts`` reads those facts for a batch of shipments in a bounded
number of queries, and opens and resolves what changed. Every opening and
resolution writes its Notice (the outbox, planned into brand webhooks by
notifications) in the same transaction, moves the shipment's version on
(the page will show its alerts) and is announced after commit. Opening a
kind already open, or resolving an alert already resolved, does nothing.
Every opening and resolution also leaves an AlertActivity row (the audit
trail): user None for the rules, the staff user and reason for theirs.

Each brand's thresholds (BrandAlertSettings; the defaults without a row)
apply to its shipments. ``missed_scan`` is opened from the driver's pings
(shipments.visits, through ``open_missed_scan``) and resolved here, by a
delivered or failed-attempt scan for the visit.

Detection runs after events are recorded (``tasks.evaluate_alerts_after_changes``, the
task enqueued by a receiver connected in ShipmentsConfig.ready) and under beat
(``tasks.evaluate_alerts_task``), with ``now`` the wall clock there and
the replayed clock in a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import chain

from django.db import transaction

from . import edits, signals
from .alert_models import ActivityAction, Resolution
from .alert_rules import (
    DEFAULTS,
    RULE_KINDS,
    SCAN_STATUSES,
    STAFF_RESOLVED,
    AlertKind,
    Facts,
    Thresholds,
    decide,
    scan_answers_visit,
)
from .eta import expected_eta
from .models import (
    Alert,
    AlertActivity,
    AlertState,
    BrandAlertSettings,
    Notice,
    NoticeKind,
    Shipment,
    TrackingEvent,
)
from .statuses import TERMINAL, Status

log = logging.getLogger(__name__)

# Shipments evaluated per transaction.
BATCH = 500
# The statuses under which time alone can open or close an alert.
TIMED_STATUSES = [status.value for status in Status if status not in TERMINAL]
# The kinds whose open alerts an evaluation may resolve.
RESOLVABLE_KINDS = (RULE_KINDS | {AlertKind.MISSED_SCAN}) - STAFF_RESOLVED

FACT_FIELDS = (
    "id",
    "brand_id",
    "tracking_number",
    "status",
    "last_event_at",
    "promised_window_end",
    "eta",
    "computed_eta",
    "computed_window_end",
    "destination_lat",
    "destination_lng",
)


def open_alert(*, shipment: Shipment, kind: str, now: datetime, detail: dict | None = None) -> Alert | None:
    """Open an alert of this kind on the shipment, unless one is open.
    Returns the new alert, or None when there was one already."""
    with transaction.atomic():
        Shipment.objects.select_for_update().only("pk").get(pk=shipment.pk)
        if Alert.objects.filter(shipment=shipment, kind=kind, state=AlertState.OPEN).exists():
            return None
        alert = Alert.objects.create(shipment=shipment, kind=kind, opened_at=now, detail=detail or {})
        _write_notices([alert], NoticeKind.ALERT_OPENED, {shipment.pk: shipment.tracking_number})
        _write_activity([alert], ActivityAction.OPENED, now)
    return alert


def open_missed_scan(*, shipment_id: int, now: datetime, visit_started_at: datetime, detail: dict) -> Alert | None:
    """Open a missed_scan alert for a visit that ended without a scan,
    unless a scan for the visit is in after all or the shipment is done.
    Checked under the shipment's lock, so a scan being recorded at the same
    moment is either seen here or resolves the alert after it."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().only("pk", "tracking_number", "status").get(pk=shipment_id)
        if shipment.status in SCAN_STATUSES or shipment.status in TERMINAL:
            return None
        if any(scan_answers_visit(at, visit_started_at) for at in _scan_times([shipment_id]).get(shipment_id, ())):
            return None
        return open_alert(shipment=shipment, kind=AlertKind.MISSED_SCAN, now=now, detail=detail)


def resolve_alert(*, alert: Alert, now: datetime, user=None, reason: str = Resolution.RULE, note: str = "") -> bool:
    """Resolve this alert with a reason code (one of ``Resolution``; a
    ValueError otherwise), by this user (None: the portal's rules), with an
    optional note kept in the audit trail. Returns whether it was this call
    that resolved it; resolving a resolved alert writes nothing."""
    if reason not in Resolution.values:
        raise ValueError(f"Unknown resolution: {reason!r}")
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
            state=AlertState.RESOLVED, resolved_at=now, resolved_by=user, resolution=reason, updated_at=now
        )
        if not changed:
            return False
        alert.refresh_from_db()
        number = Shipment.objects.values_list("tracking_number", flat=True).get(pk=alert.shipment_id)
        _write_notices([alert], NoticeKind.ALERT_RESOLVED, {alert.shipment_id: number})
        _write_activity([alert], ActivityAction.RESOLVED, now, user=user, text=note)
    return True


def evaluate_alerts(*, shipment_ids: Iterable[int], now: datetime) -> tuple[int, int]:
    """Apply the rules to these shipments at ``now``: open what should be
    open and is not, resolve what a rule closes. Returns (opened, resolved)."""
    ids = sorted(set(shipment_ids))
    opened = resolved = 0
    for start in range(0, len(ids), BATCH):
        o, r = _evaluate_batch(ids[start : start + BATCH], now)
        opened, resolved = opened + o, resolved + r
    return opened, resolved


def _evaluate_batch(ids: Sequence[int], now: datetime) -> tuple[int, int]:
    with transaction.atomic():
        # Lock the shipments, so that two evaluators (an event's and beat's)
        # take turns and the second sees what the first opened.
        shipments = list(Shipment.objects.select_for_update().filter(pk__in=ids).only(*FACT_FIELDS).order_by("pk"))
        if not shipments:
            return 0, 0
        where = _delivered_positions([s.pk for s in shipments if s.status == Status.DELIVERED])
        thresholds = _thresholds_by_brand({s.brand_id for s in shipments})
        open_alerts = {
            (alert.shipment_id, alert.kind): alert
            for alert in Alert.objects.filter(
                shipment_id__in=[s.pk for s in shipments],
                state=AlertState.OPEN,
                kind__in=list(RULE_KINDS | RESOLVABLE_KINDS),
            )
        }
        missed = [a for (_, kind), a in open_alerts.items() if kind == AlertKind.MISSED_SCAN]
        scans = _scan_times([a.shipment_id for a in missed]) if missed else {}
        to_open, to_resolve = [], []
        for alert in missed:
            if _scanned_since(alert, scans.get(alert.shipment_id, ())):
                to_resolve.append(alert)
        for shipment in shipments:
            facts = _facts(shipment, where.get(shipment.pk))
            decision = decide(facts, now, thresholds.get(shipment.brand_id, DEFAULTS))
            for kind in sorted(decision.open):
                if (shipment.pk, kind) not in open_alerts:
                    to_open.append(
                        Alert(shipment_id=shipment.pk, kind=kind, opened_at=now, detail=_detail(kind, facts))
                    )
            for kind in sorted(decision.resolve):
                alert = open_alerts.get((shipment.pk, kind))
                if alert is not None:
                    to_resolve.append(alert)
        for alert in to_resolve:
            alert.state, alert.resolved_at, alert.updated_at = AlertState.RESOLVED, now, now
            alert.resolution = Resolution.RULE
        numbers = {s.pk: s.tracking_number for s in shipments}
        if to_open:
            Alert.objects.bulk_create(to_open)
            if to_open[0].pk is None:  # A database that returns no ids.
                to_open = _reread(to_open)
            _write_notices(to_open, NoticeKind.ALERT_OPENED, numbers)
        if to_resolve:
            Alert.objects.bulk_update(to_resolve, ["state", "resolved_at", "resolution", "updated_at"])
            _write_notices(to_resolve, NoticeKind.ALERT_RESOLVED, numbers)
        _write_activity(to_open, ActivityAction.OPENED, now, also=(to_resolve, ActivityAction.RESOLVED))
    return len(to_open), len(to_resolve)


def _thresholds_by_brand(brand_ids: set[int]) -> dict[int, Thresholds]:
    """The brands' own thresholds, for those that have a row (one query)."""
    return {row.brand_id: row.thresholds() for row in BrandAlertSettings.objects.filter(brand_id__in=brand_ids)}


def _scan_times(ids: Sequence[int]) -> dict[int, list[datetime]]:
    """When each of these shipments' delivered and failed-attempt scans
    occurred (one query)."""
    rows = TrackingEvent.objects.filter(shipment_id__in=ids, status__in=list(SCAN_STATUSES)).values_list(
        "shipment_id", "occurred_at"
    )
    times: dict[int, list[datetime]] = {}
    for shipment_id, occurred_at in rows:
        times.setdefault(shipment_id, []).append(occurred_at)
    return times


def _scanned_since(alert: Alert, scan_times: Iterable[datetime]) -> bool:
    """Whether a scan answers the visit a missed_scan alert was opened for
    (the visit's start is in its detail; the opening moment stands in for
    an alert written without one)."""
    started = alert.detail.get("visit_started_at") if isinstance(alert.detail, dict) else None
    try:
        visit_started_at = datetime.fromisoformat(started) if started else alert.opened_at
    except (TypeError, ValueError):
        visit_started_at = alert.opened_at
    return any(scan_answers_visit(at, visit_started_at) for at in scan_times)


def _facts(shipment: Shipment, delivered_at: tuple[float, float] | None) -> Facts:
    lat, lng = delivered_at or (None, None)
    return Facts(
        status=shipment.status,
        last_event_at=shipment.last_event_at,
        window_end=shipment.promised_window_end,
        # Late against the promise, by the best estimate there is (the
        # computed one while the parcel is on a van).
        eta=expected_eta(shipment),
        delivered_lat=lat,
        delivered_lng=lng,
        destination_lat=shipment.destination_lat,
        destination_lng=shipment.destination_lng,
    )


def _delivered_positions(ids: Sequence[int]) -> dict[int, tuple[float, float]]:
    """Where each of these shipments' delivered scan was placed: the
    earliest delivered event with a position (one query)."""
    if not ids:
        return {}
    rows = (
        TrackingEvent.objects.filter(
            shipment_id__in=ids, status=Status.DELIVERED, location_lat__isnull=False, location_lng__isnull=False
        )
        .order_by("shipment_id", "occurred_at", "pk")
        .values_list("shipment_id", "location_lat", "location_lng")
    )
    positions: dict[int, tuple[float, float]] = {}
    for shipment_id, lat, lng in rows:
        positions.setdefault(shipment_id, (lat, lng))
    return positions


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _detail(kind: str, facts: Facts) -> dict:
    """What the alert says of why it opened, fixed at that moment."""
    if kind == AlertKind.STUCK:
        return {"status": facts.status, "last_event_at": _iso(facts.last_event_at)}
    if kind == AlertKind.LATE:
        return {"window_end": _iso(facts.window_end), "eta": _iso(facts.eta)}
    if kind == AlertKind.FAILED_NO_RETRY:
        return {"failed_at": _iso(facts.last_event_at)}
    if kind == AlertKind.DELIVERED_AWAY:
        return {"delivered_lat": facts.delivered_lat, "delivered_lng": facts.delivered_lng}
    return {"status": facts.status}


def _reread(alerts: list[Alert]) -> list[Alert]:
    keys = {(a.shipment_id, a.kind) for a in alerts}
    fresh = Alert.objects.filter(
        shipment_id__in={a.shipment_id for a in alerts}, state=AlertState.OPEN, kind__in={a.kind for a in alerts}
    )
    return [a for a in fresh if (a.shipment_id, a.kind) in keys]


def _notice_data(alert: Alert, tracking_number: str) -> dict:
    return {
        "alert_id": alert.pk,
        "kind": alert.kind,
        "tracking_number": tracking_number,
        "opened_at": _iso(alert.opened_at),
        "resolved_at": _iso(alert.resolved_at),
        "detail": alert.detail,
    }


def _write_notices(alerts: Sequence[Alert], kind: str, numbers: dict[int, str]) -> None:
    """One Notice per alert, in the caller's transaction; the shipments'
    versions moved on; both announced after commit."""
    notices = Notice.objects.bulk_create(
        [
            Notice(
                shipment_id=alert.shipment_id,
                kind=kind,
                data=_notice_data(alert, numbers.get(alert.shipment_id, "")),
            )
            for alert in alerts
        ]
    )
    ids = [n.pk for n in notices] if all(n.pk for n in notices) else _notice_ids(alerts, kind)
    edits.bump_and_announce(Shipment.objects.filter(pk__in={a.shipment_id for a in alerts}), sender=Alert)
    signals.announce_notices_on_commit(Alert, ids)


def add_from_customer(*, alert: Alert, tracking_number: str, problem: str, text: str, now: datetime) -> None:
    """The customer added to an open alert (a report on top of an address
    note, a note on top of a report): its own line on the trail, and a
    Notice the brand's webhook hears as shipment.alert_updated with what
    was added as ``update``, in the caller's transaction. The caller moves
    the shipment's version on."""
    AlertActivity.objects.create(alert=alert, at=now, action=ActivityAction.NOTE, text=text, data={"problem": problem})
    notice = Notice.objects.create(
        shipment_id=alert.shipment_id,
        kind=NoticeKind.ALERT_UPDATED,
        data={**_notice_data(alert, tracking_number), "update": {"problem": problem, "text": text, "at": _iso(now)}},
    )
    signals.announce_notices_on_commit(Alert, [notice.pk])


def _write_activity(
    alerts: Sequence[Alert],
    action: str,
    at: datetime,
    *,
    user=None,
    text: str = "",
    also: tuple[Sequence[Alert], str] | None = None,
) -> None:
    """The audit trail's rows for these openings or resolutions (and
    ``also``'s, in the same statement), in the caller's transaction. A
    resolution's row names its reason code."""
    pairs = [(alert, action) for alert in alerts]
    if also is not None:
        pairs += [(alert, also[1]) for alert in also[0]]
    if not pairs:
        return
    AlertActivity.objects.bulk_create(
        [
            AlertActivity(
                alert_id=alert.pk,
                at=at,
                user=user,
                action=kind,
                text=text,
                data={"reason": alert.resolution} if kind == ActivityAction.RESOLVED else {},
            )
            for alert, kind in pairs
        ],
        batch_size=BATCH,
    )


def _notice_ids(alerts: Sequence[Alert], kind: str) -> list[int]:
    wanted = {alert.pk for alert in alerts}
    rows = Notice.objects.filter(
        shipment_id__in={a.shipment_id for a in alerts}, kind=kind, processed_at__isnull=True
    ).values_list("pk", "data")
    return [pk for pk, data in rows if data.get("alert_id") in wanted]


def evaluate_open_shipments(*, now: datetime) -> tuple[int, int]:
    """Beat's half: every shipment whose alerts time alone can change (not
    terminal; a failed attempt is not terminal), and every shipment with an
    alert open that an evaluation may resolve (a delivered parcel's late or
    missed_scan, should the evaluation after its scan have been lost)."""
    ids = Shipment.objects.filter(status__in=TIMED_STATUSES).values_list("pk", flat=True)
    still_open = Alert.objects.filter(state=AlertState.OPEN, kind__in=list(RESOLVABLE_KINDS)).values_list(
        "shipment_id", flat=True
    )
    return evaluate_alerts(
        shipment_ids=chain(ids.iterator(chunk_size=2000), still_open.iterator(chunk_size=2000)), now=now
    )
