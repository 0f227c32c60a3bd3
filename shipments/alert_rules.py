"""Which alerts a shipment should have open, from plain facts and a "now".

Pure, like statuses.py: no database, no Django. ``shipments.alerts`` reads
the facts, asks ``decide`` and opens or resolves what it says. The times are
the events' own (``occurred_at``) against a ``now`` passed in: the wall
clock under beat, the replayed clock in a replay, so a replayed day decides
what a live one would.

Each rule says what should be open and, where a rule (not staff) closes the
kind, what should be resolved. ``delivered_away`` is closed by staff only, so
the rule never resolves it; ``customer_report`` is opened from the page.

``missed_scan`` is decided from the driver's pings rather than from the
shipment's facts: ``follow_visit`` takes a stop's visit state and one ping
and says the new state and whether a missed scan is due;
``scan_answers_visit`` says whether a delivered or failed-attempt scan
answers (resolves) it, and ``visit_served_another_stop`` whether the visit
was the driver's to a neighbouring stop, scanned there (``time_nearest``
says how long the driver stood nearer this door than the neighbour's).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shipments.statuses import TERMINAL, Status


class AlertKind(enum.StrEnum):
    STUCK = "stuck"
    LATE = "late"
    MISSED_SCAN = "missed_scan"
    DELIVERED_AWAY = "delivered_away"
    FAILED_NO_RETRY = "failed_no_retry"
    CARRIER_EXCEPTION = "carrier_exception"
    CUSTOMER_REPORT = "customer_report"


# The kinds ``decide`` opens and resolves by rule.
RULE_KINDS = frozenset(
    {
        AlertKind.STUCK,
        AlertKind.LATE,
        AlertKind.DELIVERED_AWAY,
        AlertKind.FAILED_NO_RETRY,
        AlertKind.CARRIER_EXCEPTION,
    }
)
# The kinds a rule never resolves: staff do.
STAFF_RESOLVED = frozenset({AlertKind.DELIVERED_AWAY, AlertKind.CUSTOMER_REPORT})

EXCEPTION_STATUSES = frozenset({Status.EXCEPTION, Status.RETURNED_TO_SENDER})
# The scans that answer a visit to the door: no missed_scan once one is in.
SCAN_STATUSES = frozenset({Status.DELIVERED, Status.FAILED_ATTEMPT})
# A scan this long before the visit began still belongs to it: a driver
# walking up from a van parked beyond the near distance scans on the way.
SCAN_LEAD = timedelta(minutes=10)


@dataclass(frozen=True)
class Thresholds:
    """The defaults; a brand's own (BrandAlertSettings) override them."""

    stuck_after: dict[str, timedelta] = field(
        default_factory=lambda: {
            Status.INFO_RECEIVED: timedelta(hours=24),
            Status.IN_TRANSIT: timedelta(hours=24),
            Status.OUT_FOR_DELIVERY: timedelta(hours=4),
        }
    )
    failed_no_retry_after: timedelta = timedelta(days=1)
    delivered_away_m: float = 200.0
    # missed_scan: the pings stayed within near_m of the destination for at
    # least dwell, then went farther than leave_m, with no scan for the stop.
    missed_scan_near_m: float = 75.0
    missed_scan_dwell: timedelta = timedelta(minutes=2)
    missed_scan_leave_m: float = 300.0


DEFAULTS = Thresholds()


@dataclass(frozen=True)
class Facts:
    """What the rules look at, all plain values."""

    status: str
    # The occurred_at of the newest event (any status).
    last_event_at: datetime | None = None
    window_end: datetime | None = None
    eta: datetime | None = None
    # Where the delivered scan (or its proof) was placed, and the destination.
    delivered_lat: float | None = None
    delivered_lng: float | None = None
    destination_lat: float | None = None
    destination_lng: float | None = None


@dataclass(frozen=True)
class Decision:
    open: frozenset[AlertKind]
    resolve: frozenset[AlertKind]


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def is_stuck(facts: Facts, now: datetime, thresholds: Thresholds = DEFAULTS) -> bool:
    """No event for longer than the status's limit. A last event "in the
    future" (a source's clock ahead of ours) is not stuck."""
    limit = thresholds.stuck_after.get(facts.status)
    if limit is None or facts.last_event_at is None:
        return False
    return now - facts.last_event_at > limit


def is_late(facts: Facts, now: datetime) -> bool:
    """Not delivered by the end of the promised window, or the ETA falls
    after it. Any terminal status ends it (delivered, returned, cancelled)."""
    if facts.window_end is None or Status(facts.status) in TERMINAL:
        return False
    if now > facts.window_end:
        return True
    return facts.eta is not None and facts.eta > facts.window_end


def is_failed_no_retry(facts: Facts, now: datetime, thresholds: Thresholds = DEFAULTS) -> bool:
    """A failed attempt (still the status: a new attempt would have moved
    it on) with no window ending after it, for longer than the limit."""
    if facts.status != Status.FAILED_ATTEMPT or facts.last_event_at is None:
        return False
    if facts.window_end is not None and facts.window_end > facts.last_event_at:
        return False
    return now - facts.last_event_at > thresholds.failed_no_retry_after


def is_delivered_away(facts: Facts, thresholds: Thresholds = DEFAULTS) -> bool:
    """A delivered scan placed farther than the limit from the destination.
    Without both positions nothing can be said."""
    if facts.status != Status.DELIVERED:
        return False
    points = (facts.delivered_lat, facts.delivered_lng, facts.destination_lat, facts.destination_lng)
    if any(p is None for p in points):
        return False
    return distance_m(*points) > thresholds.delivered_away_m


def is_carrier_exception(facts: Facts) -> bool:
    return facts.status in EXCEPTION_STATUSES


def decide(facts: Facts, now: datetime, thresholds: Thresholds = DEFAULTS) -> Decision:
    """The rule-decided kinds that should be open, and those that should be
    resolved (every rule kind not open, except those staff resolve)."""
    verdicts = {
        AlertKind.STUCK: is_stuck(facts, now, thresholds),
        AlertKind.LATE: is_late(facts, now),
        AlertKind.FAILED_NO_RETRY: is_failed_no_retry(facts, now, thresholds),
        AlertKind.DELIVERED_AWAY: is_delivered_away(facts, thresholds),
        AlertKind.CARRIER_EXCEPTION: is_carrier_exception(facts),
    }
    opened = frozenset(kind for kind, on in verdicts.items() if on)
    resolved = frozenset(kind for kind, on in verdicts.items() if not on and kind not in STAFF_RESOLVED)
    return Decision(open=opened, resolve=resolved)


@dataclass(frozen=True)
class Visit:
    """A driver's visit to one stop's destination, as the pings tell it.

    ``started_at``: the first ping within the near distance (None: not
    there). ``dwelled_at``: the first ping within it at least the dwell
    after ``started_at`` (the visit is long enough to expect a scan).
    ``left_at``: the first ping beyond the leave distance after a long
    enough visit (the missed scan's moment)."""

    started_at: datetime | None = None
    dwelled_at: datetime | None = None
    left_at: datetime | None = None

    @property
    def newest(self) -> datetime | None:
        return max((t for t in (self.started_at, self.dwelled_at, self.left_at) if t is not None), default=None)


@dataclass(frozen=True)
class VisitStep:
    visit: Visit
    # A long enough visit just ended by going away: a missed scan, unless a
    # scan for the stop is in.
    missed_scan: bool = False
    # The ping's distance from the destination, in metres.
    distance_m: float = 0.0


def follow_visit(
    visit: Visit,
    *,
    lat: float,
    lng: float,
    at: datetime,
    destination: tuple[float, float],
    thresholds: Thresholds = DEFAULTS,
) -> VisitStep:
    """One ping (its position and recorded_at) applied to a stop's visit.

    Hysteresis: a visit begins at a ping within ``missed_scan_near_m`` and
    ends only at one at least ``missed_scan_leave_m`` away; a ping in
    between changes nothing, so GPS noise around a van parked near the door
    never ends a visit and begins another. A visit ending before the dwell
    (a van passing by) is forgotten, and so is one not yet dwelled whose
    ping comes ``wander_m`` or more away. A ping no newer than the visit's last
    moment (arriving out of order) changes nothing. A new visit may begin
    after one has ended (the driver came back)."""
    distance = distance_m(lat, lng, *destination)
    unchanged = VisitStep(visit=visit, distance_m=distance)
    newest = visit.newest
    if newest is not None and at <= newest:
        return unchanged
    near = distance <= thresholds.missed_scan_near_m
    away = distance >= thresholds.missed_scan_leave_m
    there = visit.started_at is not None and visit.left_at is None
    if not there:
        return VisitStep(visit=Visit(started_at=at), distance_m=distance) if near else unchanged
    if near:
        if visit.dwelled_at is None and at - visit.started_at >= thresholds.missed_scan_dwell:
            return VisitStep(visit=Visit(started_at=visit.started_at, dwelled_at=at), distance_m=distance)
        return unchanged
    if not away:
        if visit.dwelled_at is None and distance >= wander_m(thresholds):
            # Before the dwell, a van this far off has passed the door, not
            # stopped at it: it may be standing at another stop short of
            # the leave distance, and a pass-by on its way back must not
            # read as the end of a long wait here.
            return VisitStep(visit=Visit(), distance_m=distance)
        return unchanged
    if visit.dwelled_at is None:
        return VisitStep(visit=Visit(), distance_m=distance)
    left = Visit(started_at=visit.started_at, dwelled_at=visit.dwelled_at, left_at=at)
    return VisitStep(visit=left, missed_scan=True, distance_m=distance)


def wander_m(thresholds: Thresholds = DEFAULTS) -> float:
    """How far off a visit that has not yet dwelled is forgotten: midway
    between the near and the leave distances (GPS noise of 10-30 m around
    a van standing within the near distance stays well short of it)."""
    return (thresholds.missed_scan_near_m + thresholds.missed_scan_leave_m) / 2


def scan_answers_visit(scan_at: datetime, visit_started_at: datetime) -> bool:
    """Whether a delivered or failed-attempt scan (its occurred_at) is one
    for this visit: made during it, after it (arriving late or not), or
    shortly before the pings came near."""
    return scan_at >= visit_started_at - SCAN_LEAD


def visit_served_another_stop(
    visit: Visit,
    other_scans: Iterable[datetime],
    thresholds: Thresholds = DEFAULTS,
    *,
    own_time: timedelta | None = None,
) -> bool:
    """Whether a visit that ended without a scan was the driver's visit to
    a neighbouring stop: another stop of the route, whose door is within the
    near distance of this one's (the caller picks those), was scanned during
    it (its occurred_at between the visit's start and its end), and less
    than the dwell went by between the last such scan and the leaving.
    Doors that close share a visit; the one scanned had it, unless the
    driver stood nearer this door than the scanned one's for a dwell or
    more (``own_time``, from ``time_nearest``): a van that waited at this
    door and then walked next door to scan there missed this one."""
    if visit.started_at is None or visit.left_at is None:
        return False
    if own_time is not None and own_time >= thresholds.missed_scan_dwell:
        return False
    during = [at for at in other_scans if visit.started_at <= at <= visit.left_at]
    return bool(during) and visit.left_at - max(during) < thresholds.missed_scan_dwell


# How much nearer one door than the other a ping must be to count as at
# it: a van parked halfway between two doors, its fixes scattered by GPS
# noise of a few metres, is at neither.
NEAREST_MARGIN_M = 15.0


def time_nearest(
    pings: Iterable[tuple[datetime, float, float]],
    door: tuple[float, float],
    other_doors: Iterable[tuple[float, float]],
    near_m: float,
) -> timedelta:
    """How long the pings (recorded_at, lat, lng; any order) put the driver
    within ``near_m`` of this door and ``NEAREST_MARGIN_M`` nearer it than
    any of the other doors: each ping counts until the next one."""
    others = list(other_doors)
    ordered = sorted(pings)
    total = timedelta(0)
    for (at, lat, lng), (then, _, _) in itertools.pairwise(ordered):
        own = distance_m(lat, lng, *door)
        if own <= near_m and all(own + NEAREST_MARGIN_M <= distance_m(lat, lng, *o) for o in others):
            total += then - at
    return total
