"""Missed scans, detected from a driver's pings as they are recorded.

The rule (``alert_rules.follow_visit``; the thresholds are the brand's
BrandAlertSettings, or the defaults 75 m, 2 min, 300 m without a row):

- The stops watched are those of the driver's routes dated the pings' UTC
  day or a day either side (a route is dated in the driver's local day),
  whose shipment has a destination latitude and longitude and is not
  delivered, failed-attempt or otherwise terminal. A shipment on two of
  those routes is watched on the latest one.
- The pings applied are those of the batch newer than the driver's newest
  ping before it (``Driver.last_position_at``), in ``recorded_at`` order:
  one arriving out of order is stored but never moves a visit backwards or
  fakes a leave. "Now" is each ping's own ``recorded_at``, so a replayed day
  detects what a live one would.
- A visit starts at the first ping within ``missed_scan_near_m`` of the
  destination (``Stop.visit_started_at``). It has dwelled once a ping within
  that distance comes at least ``missed_scan_dwell`` after the start
  (``Stop.visit_near_at``). It ends at the first ping at least
  ``missed_scan_leave_m`` away; pings in between change nothing
  (hysteresis: GPS noise around a van parked near the door never ends one
  visit and starts another). A visit that ends before it dwelled (a van
  passing by) is forgotten; one that dwelled records ``Stop.visit_left_at``
  and opens a ``missed_scan`` alert at that ping's ``recorded_at``, unless a
  delivered or failed-attempt scan for the visit is in by then (one whose
  ``occurred_at`` is at most ``alert_rules.SCAN_LEAD`` before the visit's
  start). A later visit to the same stop may start afresh.
- The alert resolves (``alerts.evaluate_alerts``, after the scan is
  recorded and under beat) when such a scan arrives, also one arriving late
  with an ``occurred_at`` before the leave.
- Its ``detail``: ``stop_sequence``, ``route_date``, ``visit_started_at``,
  ``visit_left_at`` and ``left_distance_m`` (how far from the destination
  the leaving ping was, in whole metres): never the driver's position or
  the address, because the detail goes to the brand's webhooks.

Cost on the ping path: one query per batch that has pings newer than the
driver's last position (the watched stops near the batch's pings or in a
visit, with the brand's thresholds joined in), an UPDATE of the stops whose
visit changed, and an opening's few writes when a visit ends without a
scan. ``settings.ALERTS_DETECT_ON_PINGS = False`` turns it off.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence

from django.core.validators import MaxValueValidator
from django.db.models import F, Q

from . import alerts
from .alert_models import BrandAlertSettings
from .alert_rules import DEFAULTS, SCAN_STATUSES, Thresholds, Visit, follow_visit
from .models import Driver, Stop
from .statuses import TERMINAL, Status

WATCHED_STATUSES = [s.value for s in Status if s not in TERMINAL and s not in SCAN_STATUSES]
VISIT_FIELDS = ["visit_started_at", "visit_near_at", "visit_left_at"]
METRES_PER_DEGREE = 111_195.0


def _most(field: str) -> float:
    validators = BrandAlertSettings._meta.get_field(field).validators
    return float(max(v.limit_value for v in validators if isinstance(v, MaxValueValidator)))


# A stop not in a visit matters to a batch only if a ping can come near it:
# the database is asked for those within the largest near distance a brand
# may set of the batch's pings.
NEAR_M_MOST = _most("missed_scan_near_m")


def follow_pings(*, driver: Driver, pings: Sequence) -> int:
    """Apply a batch of the driver's pings (newer than its previous last
    position, any order) to the visits of the stops it may be at. Runs in
    the caller's transaction, which holds the driver's row. Returns the
    number of missed_scan alerts opened."""
    if not pings:
        return 0
    pings = sorted(pings, key=lambda p: p.recorded_at)
    stops = _watched_stops(driver, pings)
    if not stops:
        return 0
    thresholds = _thresholds(stops[0])
    grid = _PingGrid(pings, thresholds.missed_scan_near_m)
    changed, due = [], []
    for stop in stops:
        destination = (stop.shipment.destination_lat, stop.shipment.destination_lng)
        before = visit = Visit(stop.visit_started_at, stop.visit_near_at, stop.visit_left_at)
        # Away from the stop, only a ping within the near distance can
        # change its visit: the grid's candidates; in a visit, every ping.
        near = grid.candidates(destination)
        index = 0
        while index < len(pings):
            if visit.started_at is None or visit.left_at is not None:
                at = bisect.bisect_left(near, index)
                if at == len(near):
                    break
                index = near[at]
            ping = pings[index]
            index += 1
            step = follow_visit(
                visit, lat=ping.lat, lng=ping.lng, at=ping.recorded_at, destination=destination, thresholds=thresholds
            )
            visit = step.visit
            if step.missed_scan:
                due.append((stop, visit, step.distance_m))
        if visit != before:
            stop.visit_started_at, stop.visit_near_at, stop.visit_left_at = (
                visit.started_at,
                visit.dwelled_at,
                visit.left_at,
            )
            changed.append(stop)
    if changed:
        Stop.objects.bulk_update(changed, VISIT_FIELDS)
    opened = 0
    for stop, visit, distance in due:
        alert = alerts.open_missed_scan(
            shipment_id=stop.shipment_id,
            now=visit.left_at,
            visit_started_at=visit.started_at,
            detail={
                "stop_sequence": stop.sequence,
                "route_date": stop.route_date.isoformat(),
                "visit_started_at": visit.started_at.isoformat(),
                "visit_left_at": visit.left_at.isoformat(),
                "left_distance_m": round(distance),
            },
        )
        opened += alert is not None
    return opened


class _PingGrid:
    """The batch's pings in cells a little larger than the near distance,
    so that the pings that may be near a point are those of its cell and
    the eight around it: a batch of n pings and m stops costs about n + m
    distance computations rather than n * m."""

    def __init__(self, pings: Sequence, near_m: float):
        # 1% wider than the near distance, for the flat-earth degrees.
        self.lat_step = near_m * 1.01 / METRES_PER_DEGREE
        farthest = min(max(abs(p.lat) for p in pings) + self.lat_step, 89.9)
        self.lng_step = near_m * 1.01 / (METRES_PER_DEGREE * math.cos(math.radians(farthest)))
        self.cells: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, ping in enumerate(pings):
            self.cells[self._cell(ping.lat, ping.lng)].append(index)

    def _cell(self, lat: float, lng: float) -> tuple[int, int]:
        return math.floor(lat / self.lat_step), math.floor(lng / self.lng_step)

    def candidates(self, point: tuple[float, float]) -> list[int]:
        """The indices, in order, of the pings that may be within the near
        distance of the point."""
        row, column = self._cell(*point)
        found = [i for dr in (-1, 0, 1) for dc in (-1, 0, 1) for i in self.cells.get((row + dr, column + dc), ())]
        return sorted(found)


def _watched_stops(driver: Driver, pings: Sequence) -> list[Stop]:
    """The stops of the driver's routes around the pings' days that the
    batch may start, dwell or end a visit at (one query), one per shipment."""
    days = sorted({p.recorded_at.astimezone(dt.UTC).date() + dt.timedelta(days=d) for p in pings for d in (-1, 0, 1)})
    lats = [p.lat for p in pings]
    lngs = [p.lng for p in pings]
    lat_margin = NEAR_M_MOST / METRES_PER_DEGREE
    widest = max(abs(min(lats) - lat_margin), abs(max(lats) + lat_margin))
    lng_margin = NEAR_M_MOST / (METRES_PER_DEGREE * max(math.cos(math.radians(min(widest, 89.9))), 1e-6))
    near_the_pings = Q(
        shipment__destination_lat__range=(min(lats) - lat_margin, max(lats) + lat_margin),
        shipment__destination_lng__range=(min(lngs) - lng_margin, max(lngs) + lng_margin),
    )
    in_a_visit = Q(visit_started_at__isnull=False, visit_left_at__isnull=True)
    rows = (
        Stop.objects.filter(
            near_the_pings | in_a_visit,
            route__driver=driver,
            route__date__in=days,
            shipment__status__in=WATCHED_STATUSES,
            shipment__destination_lat__isnull=False,
            shipment__destination_lng__isnull=False,
        )
        .select_related("shipment")
        .only(
            "sequence",
            "shipment_id",
            *VISIT_FIELDS,
            "shipment__destination_lat",
            "shipment__destination_lng",
        )
        .annotate(
            route_date=F("route__date"),
            near_m=F("route__driver__brand__alert_settings__missed_scan_near_m"),
            dwell_seconds=F("route__driver__brand__alert_settings__missed_scan_dwell_seconds"),
            leave_m=F("route__driver__brand__alert_settings__missed_scan_leave_m"),
        )
        .order_by("shipment_id", "-route_date")
    )
    latest: dict[int, Stop] = {}
    for stop in rows:
        latest.setdefault(stop.shipment_id, stop)
    return list(latest.values())


def _thresholds(stop: Stop) -> Thresholds:
    """The brand's missed-scan thresholds, joined into the stop's row (the
    defaults when it has no settings)."""
    if stop.near_m is None:
        return DEFAULTS
    return dataclasses.replace(
        DEFAULTS,
        missed_scan_near_m=float(stop.near_m),
        missed_scan_dwell=dt.timedelta(seconds=stop.dwell_seconds),
        missed_scan_leave_m=float(stop.leave_m),
    )
