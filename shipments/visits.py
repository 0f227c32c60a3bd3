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
- Doors close together share a visit: one that ends without a scan opens
  nothing if another stop of the route, whose door is within the near
  distance, was scanned during it less than the dwell before the leave
  (the driver was there for the neighbour) — unless the visit's pings put
  the driver a dwell or more at this door, ``NEAREST_MARGIN_M`` nearer it
  than the scanned one's (``alert_rules.time_nearest``): waiting here and
  then walking next door to scan there missed this door's scan.

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
import functools
import math
from collections import defaultdict
from collections.abc import Sequence

from django.core.validators import MaxValueValidator
from django.db import connection
from django.db.models import F, FloatField, Q, Value
from django.db.models.functions import Coalesce

from . import alerts
from .alert_models import BrandAlertSettings
from .alert_rules import (
    DEFAULTS,
    SCAN_STATUSES,
    Thresholds,
    Visit,
    distance_m,
    follow_visit,
    time_nearest,
    visit_served_another_stop,
)
from .bulk import column, quote
from .models import Driver, LocationPing, Route, Shipment, Stop, TrackingEvent
from .statuses import TERMINAL, Status

WATCHED_STATUSES = [s.value for s in Status if s not in TERMINAL and s not in SCAN_STATUSES]
VISIT_FIELDS = ("visit_started_at", "visit_near_at", "visit_left_at")
METRES_PER_DEGREE = 111_195.0


def _most(field: str) -> float:
    validators = BrandAlertSettings._meta.get_field(field).validators
    return float(max(v.limit_value for v in validators if isinstance(v, MaxValueValidator)))


# The largest near distance a brand may set: it widens the longitude margin
# enough whatever the brand's own.
NEAR_M_MOST = _most("missed_scan_near_m")


@dataclasses.dataclass
class _Watched:
    """A watched stop, as the one query reads it."""

    pk: int
    shipment_id: int
    route_id: int
    sequence: int
    route_date: dt.date
    destination: tuple[float, float]
    visit: Visit


def follow_pings(*, driver: Driver, pings: Sequence) -> int:
    """Apply a batch of the driver's pings (newer than its previous last
    position, any order) to the visits of the stops it may be at. Runs in
    the caller's transaction, which holds the driver's row. Returns the
    number of missed_scan alerts opened."""
    if not pings:
        return 0
    pings = sorted(pings, key=lambda p: p.recorded_at)
    stops, thresholds = _watched_stops(driver, pings)
    if not stops:
        return 0
    grid = _PingGrid(pings, thresholds.missed_scan_near_m)
    due = []
    for stop in stops:
        before = visit = stop.visit
        # Away from the stop, only a ping within the near distance can
        # change its visit: the grid's candidates; in a visit, every ping.
        near = grid.candidates(stop.destination)
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
                visit,
                lat=ping.lat,
                lng=ping.lng,
                at=ping.recorded_at,
                destination=stop.destination,
                thresholds=thresholds,
            )
            visit = step.visit
            if step.missed_scan:
                due.append((stop, visit, step.distance_m))
        if visit != before:
            # Usually one stop a batch, when at all: an UPDATE each is
            # cheaper than a bulk one.
            Stop.objects.filter(pk=stop.pk).update(
                visit_started_at=visit.started_at, visit_near_at=visit.dwelled_at, visit_left_at=visit.left_at
            )
    opened = 0
    for stop, visit, distance in due:
        if _for_another_stop(driver, stop, visit, thresholds):
            continue
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


def _for_another_stop(driver: Driver, stop: _Watched, visit: Visit, thresholds: Thresholds) -> bool:
    """Whether the driver scanned another stop of the route, whose door is
    within the near distance of this one's, during this visit, too late in
    it for what remained to be a visit of its own, and did not stand nearer
    this door than the scanned ones' for a dwell (one query at a visit's
    end, and one more for the visit's pings when a neighbour was scanned)."""
    scans = (
        TrackingEvent.objects.filter(
            shipment__stops__route_id=stop.route_id,
            status__in=list(SCAN_STATUSES),
            occurred_at__gte=visit.started_at,
            occurred_at__lte=visit.left_at,
            shipment__destination_lat__isnull=False,
            shipment__destination_lng__isnull=False,
        )
        .exclude(shipment_id=stop.shipment_id)
        .values_list("occurred_at", "shipment__destination_lat", "shipment__destination_lng")
    )
    next_door = [
        (at, (lat, lng))
        for at, lat, lng in scans
        if distance_m(lat, lng, *stop.destination) <= thresholds.missed_scan_near_m
    ]
    scanned_at = [at for at, _ in next_door]
    if not visit_served_another_stop(visit, scanned_at, thresholds):
        return False
    pings = LocationPing.objects.filter(
        driver=driver, recorded_at__gte=visit.started_at, recorded_at__lte=visit.left_at
    ).values_list("recorded_at", "lat", "lng")
    own_time = time_nearest(pings, stop.destination, {door for _, door in next_door}, thresholds.missed_scan_near_m)
    return visit_served_another_stop(visit, scanned_at, thresholds, own_time=own_time)


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


def _watched_stops(driver: Driver, pings: Sequence) -> tuple[list[_Watched], Thresholds]:
    """The stops of the driver's routes around the pings' days that the
    batch may start, dwell or end a visit at, one per shipment (on its
    latest route), and the brand's thresholds: one written-out query
    (``WATCHED_SQL``; compiling its ORM twin, ``watched_rows_orm``, cost
    more than the rest of recording a ping, as bench/alerts.py measures)."""
    with connection.cursor() as cursor:
        cursor.execute(_watched_sql(connection.vendor), _watched_params(driver, pings))
        rows = cursor.fetchall()
    convert = _row_converters()
    latest: dict[int, _Watched] = {}
    thresholds = DEFAULTS
    for row in rows:
        pk, shipment_id, route_id, sequence, date, lat, lng, started, near_at, left, *own = convert(row)
        if shipment_id not in latest:
            latest[shipment_id] = _Watched(
                pk, shipment_id, route_id, sequence, date, (lat, lng), Visit(started, near_at, left)
            )
        thresholds = _thresholds(*own)
    return list(latest.values()), thresholds


# (model, field) of each selected column, in order.
WATCHED_COLUMNS = (
    (Stop, "id"),
    (Stop, "shipment"),
    (Stop, "route"),
    (Stop, "sequence"),
    (Route, "date"),
    (Shipment, "destination_lat"),
    (Shipment, "destination_lng"),
    (Stop, "visit_started_at"),
    (Stop, "visit_near_at"),
    (Stop, "visit_left_at"),
    (BrandAlertSettings, "missed_scan_near_m"),
    (BrandAlertSettings, "missed_scan_dwell_seconds"),
    (BrandAlertSettings, "missed_scan_leave_m"),
)
_ALIASES = {Stop: "st", Route: "r", Shipment: "sh", BrandAlertSettings: "bs"}

WATCHED_SQL = """
SELECT {columns}
FROM {stop} st
JOIN {route} r ON r.{route_pk} = st.{route_id}
JOIN {shipment} sh ON sh.{shipment_pk} = st.{shipment_id}
LEFT JOIN {settings} bs ON bs.{settings_brand} = %s
WHERE r.{driver_id} = %s AND r.{date} >= %s AND r.{date} <= %s
  AND sh.{status} IN ({statuses})
  AND sh.{lat} IS NOT NULL AND sh.{lng} IS NOT NULL
  AND ((st.{started} IS NOT NULL AND st.{left} IS NULL)
       OR (sh.{lat} >= %s - COALESCE(bs.{near_m}, %s) * %s AND sh.{lat} <= %s + COALESCE(bs.{near_m}, %s) * %s
           AND sh.{lng} >= %s - COALESCE(bs.{near_m}, %s) * %s AND sh.{lng} <= %s + COALESCE(bs.{near_m}, %s) * %s))
ORDER BY st.{shipment_id}, r.{date} DESC
"""


@functools.cache
def _watched_sql(vendor: str) -> str:
    return WATCHED_SQL.format(
        columns=", ".join(f"{_ALIASES[model]}.{column(model, name)}" for model, name in WATCHED_COLUMNS),
        stop=quote(Stop._meta.db_table),
        route=quote(Route._meta.db_table),
        shipment=quote(Shipment._meta.db_table),
        settings=quote(BrandAlertSettings._meta.db_table),
        route_pk=quote(Route._meta.pk.column),
        shipment_pk=quote(Shipment._meta.pk.column),
        route_id=column(Stop, "route"),
        shipment_id=column(Stop, "shipment"),
        settings_brand=column(BrandAlertSettings, "brand"),
        driver_id=column(Route, "driver"),
        date=column(Route, "date"),
        status=column(Shipment, "status"),
        statuses=", ".join(["%s"] * len(WATCHED_STATUSES)),
        lat=column(Shipment, "destination_lat"),
        lng=column(Shipment, "destination_lng"),
        started=column(Stop, "visit_started_at"),
        left=column(Stop, "visit_left_at"),
        near_m=column(BrandAlertSettings, "missed_scan_near_m"),
    )


def _watched_params(driver: Driver, pings: Sequence) -> list:
    """The query's parameters: the days around the pings' UTC days, and the
    box around the pings widened by the brand's near distance in degrees of
    latitude and (at the batch's farthest latitude from the equator) of
    longitude, a little wide."""
    days = [p.recorded_at.astimezone(dt.UTC).date() for p in pings]
    lats = [p.lat for p in pings]
    lngs = [p.lng for p in pings]
    widest = min(max(abs(min(lats)), abs(max(lats))) + NEAR_M_MOST / METRES_PER_DEGREE, 89.9)
    per_lat = 1.01 / METRES_PER_DEGREE
    per_lng = 1.01 / (METRES_PER_DEGREE * math.cos(math.radians(widest)))
    near = DEFAULTS.missed_scan_near_m
    return [
        driver.brand_id,
        driver.pk,
        connection.ops.adapt_datefield_value(min(days) - dt.timedelta(days=1)),
        connection.ops.adapt_datefield_value(max(days) + dt.timedelta(days=1)),
        *WATCHED_STATUSES,
        *(min(lats), near, per_lat, max(lats), near, per_lat),
        *(min(lngs), near, per_lng, max(lngs), near, per_lng),
    ]


@functools.cache
def _row_converters():
    """Turns a row as the database gives it into Python values as the ORM
    would (dates and aware datetimes on SQLite)."""
    converters = []
    for index, (model, name) in enumerate(WATCHED_COLUMNS):
        col = model._meta.get_field(name).get_col(_ALIASES[model])
        functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if functions:
            converters.append((index, col, tuple(functions)))

    def convert(row: tuple) -> list:
        values = list(row)
        for index, col, functions in converters:
            for function in functions:
                values[index] = function(values[index], col, connection)
        return values

    return convert


def watched_rows_orm(driver: Driver, pings: Sequence) -> list[tuple]:
    """The ORM twin of ``WATCHED_SQL`` (the rows it returns, in order), for
    the test that they agree."""
    params = _watched_params(driver, pings)
    days = [p.recorded_at.astimezone(dt.UTC).date() for p in pings]
    first, last = min(days) - dt.timedelta(days=1), max(days) + dt.timedelta(days=1)
    lats = [p.lat for p in pings]
    lngs = [p.lng for p in pings]
    per_lat, per_lng = params[-10], params[-4]
    own = "route__driver__brand__alert_settings__"
    near = Coalesce(F(own + "missed_scan_near_m"), Value(DEFAULTS.missed_scan_near_m), output_field=FloatField())
    near_the_pings = Q(
        shipment__destination_lat__gte=Value(min(lats)) - near * Value(per_lat),
        shipment__destination_lat__lte=Value(max(lats)) + near * Value(per_lat),
        shipment__destination_lng__gte=Value(min(lngs)) - near * Value(per_lng),
        shipment__destination_lng__lte=Value(max(lngs)) + near * Value(per_lng),
    )
    in_a_visit = Q(visit_started_at__isnull=False, visit_left_at__isnull=True)
    return list(
        Stop.objects.filter(
            near_the_pings | in_a_visit,
            route__driver=driver,
            route__date__range=(first, last),
            shipment__status__in=WATCHED_STATUSES,
            shipment__destination_lat__isnull=False,
            shipment__destination_lng__isnull=False,
        )
        .order_by("shipment_id", "-route__date")
        .values_list(
            "pk",
            "shipment_id",
            "route_id",
            "sequence",
            "route__date",
            "shipment__destination_lat",
            "shipment__destination_lng",
            *VISIT_FIELDS,
            own + "missed_scan_near_m",
            own + "missed_scan_dwell_seconds",
            own + "missed_scan_leave_m",
        )
    )


def _thresholds(near_m: int | None, dwell_seconds: int | None, leave_m: int | None) -> Thresholds:
    """The brand's missed-scan thresholds (the defaults when it has no
    settings)."""
    if near_m is None:
        return DEFAULTS
    return dataclasses.replace(
        DEFAULTS,
        missed_scan_near_m=float(near_m),
        missed_scan_dwell=dt.timedelta(seconds=dwell_seconds),
        missed_scan_leave_m=float(leave_m),
    )
