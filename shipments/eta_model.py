"""When a driver reaches each stop still ahead, and the window to promise.

Pure, like statuses.py: no database, no Django. ``estimate_route`` takes the
driver's last position and time, the stops still ahead in driving order and
what history taught (``Learned``), and answers one ``Estimate`` per stop: the
arrival at the door and a window around it. ``shipments.eta_history`` builds
``Learned`` from the database; the integration asks this module on every ping
and scan; ``eta_backtest`` replays past days through it.

Travel time is the straight line times a detour factor at the speed learned
for the hour the leg starts in, unless another ``Travel`` (a routing server,
``shipments.eta_travel``) is passed. Each stop before the one asked about
adds the learned service time (arrival at a door to its scan). The window's
sides are the errors measured on past stops with as many stops ahead; before
there is such history it grows with the stops and the time still ahead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from shipments.alert_rules import distance_m

BUCKETS = ("1", "2-3", "4-10", "11+")
# A bucket's errors are kept as they would be this many stops ahead, and a
# window scales them by the square root of its own stops ahead against
# that: errors add up stop by stop, so the 25th stop ahead needs a wider
# window than the 11th, though both are "11+".
REFERENCE_STOPS = {"1": 1.0, "2-3": 2.5, "4-10": 7.0, "11+": 16.0}


def spread(stops_ahead: int) -> float:
    """How much wider than its bucket's reference a window this many stops
    ahead is."""
    return math.sqrt(max(1, stops_ahead) / REFERENCE_STOPS[bucket(stops_ahead)])


# Defaults before any history: a van in town averages ~25 km/h over road
# distance, roads are ~1.3 times the straight line, a door takes ~2.5 minutes.
DEFAULT_SPEED_MPS = 7.0
DEFAULT_DETOUR = 1.3
DEFAULT_SERVICE_S = 150.0
# Closer than this to a door, the driver is there: no leg to drive.
AT_DOOR_M = 30.0
# A speed below this (a jam, a lunch break read as driving) would promise
# hours for a street; above it, a straight line on a motorway.
MIN_SPEED_MPS, MAX_SPEED_MPS = 1.5, 30.0

# The window before history: a few minutes either side of the next stop,
# widening with every stop and with the share of the time still to drive.
NO_HISTORY_BASE_S = 300.0
NO_HISTORY_PER_STOP_S = 90.0
NO_HISTORY_SHARE_OF_AHEAD = 0.10
# The share of past errors a learned window leaves out on each side; a
# bucket with fewer samples than this keeps the no-history window.
WINDOW_QUANTILES = (0.05, 0.95)
MIN_BUCKET_SAMPLES = 20


@dataclass(frozen=True)
class Point:
    lat: float
    lng: float


@dataclass(frozen=True)
class Learned:
    speed_mps_by_hour: Mapping[int, float]
    default_speed_mps: float
    detour: float
    service_s: float
    # bucket -> (early, late) seconds: the window is eta - early .. eta + late,
    # each side scaled by spread(stops_ahead) within the bucket
    error_s_by_bucket: Mapping[str, tuple[float, float]]
    samples: int = 0

    def speed_at(self, hour: int) -> float:
        speed = self.speed_mps_by_hour.get(hour, self.default_speed_mps)
        return min(MAX_SPEED_MPS, max(MIN_SPEED_MPS, speed))


DEFAULT_LEARNED = Learned(
    speed_mps_by_hour={},
    default_speed_mps=DEFAULT_SPEED_MPS,
    detour=DEFAULT_DETOUR,
    service_s=DEFAULT_SERVICE_S,
    error_s_by_bucket={},
    samples=0,
)


@dataclass(frozen=True)
class Estimate:
    stop_id: int
    stops_ahead: int
    eta: datetime
    window_start: datetime
    window_end: datetime


class Travel(Protocol):
    def leg_seconds(self, legs: Sequence[tuple[Point, Point]], depart: datetime, learned: Learned) -> list[float]:
        """Driving seconds for each leg, driven one after another from
        ``depart`` with the learned service time spent at each stop."""
        ...


def point_distance_m(a: Point, b: Point) -> float:
    return distance_m(a.lat, a.lng, b.lat, b.lng)


@dataclass(frozen=True)
class StraightLineTravel:
    """The straight line times the detour at the hour's learned speed; the
    hour is the local one (``tz``) at which each leg starts."""

    tz: tzinfo = UTC

    def leg_seconds(self, legs: Sequence[tuple[Point, Point]], depart: datetime, learned: Learned) -> list[float]:
        out: list[float] = []
        clock = depart.astimezone(self.tz)
        # Hours change rarely along a route: look the speed up per hour, not per leg.
        hour, speed = clock.hour, learned.speed_at(clock.hour)
        elapsed = 0.0
        for a, b in legs:
            straight = point_distance_m(a, b)
            if straight < AT_DOOR_M:
                seconds = 0.0
            else:
                now_hour = (clock + timedelta(seconds=elapsed)).hour
                if now_hour != hour:
                    hour, speed = now_hour, learned.speed_at(now_hour)
                seconds = straight * learned.detour / speed
            out.append(seconds)
            elapsed += seconds + learned.service_s
        return out


def bucket(stops_ahead: int) -> str:
    """The error bucket of a stop this many stops ahead (1 = the next)."""
    if stops_ahead <= 1:
        return "1"
    if stops_ahead <= 3:
        return "2-3"
    if stops_ahead <= 10:
        return "4-10"
    return "11+"


def no_history_sides(stops_ahead: int, seconds_ahead: float) -> tuple[float, float]:
    """The (early, late) sides of a window before history: wider with each
    stop and with the time still to go; late wider than early, since a
    van is held up more often than it runs ahead."""
    half = NO_HISTORY_BASE_S + NO_HISTORY_PER_STOP_S * stops_ahead + NO_HISTORY_SHARE_OF_AHEAD * seconds_ahead
    return 0.8 * half, 1.2 * half


def estimate_route(
    *,
    origin: Point,
    at: datetime,
    stops: Sequence[tuple[int, Point]],
    learned: Learned,
    travel: Travel | None = None,
    tz: tzinfo = UTC,
) -> list[Estimate]:
    """One estimate per stop ahead, in the order given (the driving order).

    ``at`` is when the driver was at ``origin`` (the last ping's time, or a
    scan's): arrivals are counted from it. A travel that fails or answers
    the wrong number of legs is replaced by the straight line, so a routing
    server's trouble never costs the parcel its estimate."""
    if not stops:
        return []
    doors = [door for _, door in stops]
    legs = list(zip([origin, *doors[:-1]], doors, strict=True))
    seconds = None
    if travel is not None:
        try:
            seconds = travel.leg_seconds(legs, at, learned)
        except Exception:
            # Whatever went wrong in an adapter, the straight line answers.
            seconds = None
        if seconds is not None and len(seconds) != len(legs):
            seconds = None
    if seconds is None:
        seconds = StraightLineTravel(tz).leg_seconds(legs, at, learned)

    out: list[Estimate] = []
    ahead = 0.0
    for index, ((stop_id, _), leg) in enumerate(zip(stops, seconds, strict=True)):
        stops_ahead = index + 1
        if index:
            ahead += learned.service_s
        ahead += max(0.0, leg)
        eta = at + timedelta(seconds=ahead)
        learned_sides = learned.error_s_by_bucket.get(bucket(stops_ahead))
        if learned_sides:
            scale = spread(stops_ahead)
            sides = (learned_sides[0] * scale, learned_sides[1] * scale)
        else:
            sides = no_history_sides(stops_ahead, ahead)
        early, late = max(0.0, sides[0]), max(0.0, sides[1])
        out.append(
            Estimate(
                stop_id=stop_id,
                stops_ahead=stops_ahead,
                eta=eta,
                # The driver cannot arrive before the moment the estimate starts from.
                window_start=max(at, eta - timedelta(seconds=early)),
                window_end=eta + timedelta(seconds=late),
            )
        )
    return out


def widened(estimates: Sequence[Estimate], silence: timedelta, *, earliest: datetime) -> list[Estimate]:
    """Estimates made from a position ``silence`` old, counted from now:
    the van may have driven on all that while unheard, so each window's
    start comes earlier by as much (never before ``earliest``, now)."""
    return [replace(e, window_start=max(earliest, min(e.window_start, e.eta) - silence)) for e in estimates]


# What history teaches, from plain samples (shipments.eta_history reads
# them from the database; the backtest from the days before the replayed one).


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between sorted values."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def error_sides(errors_s: Sequence[float]) -> tuple[float, float] | None:
    """(early, late) from past errors (actual minus estimate, seconds), or
    None when there are too few to trust."""
    if len(errors_s) < MIN_BUCKET_SAMPLES:
        return None
    low, high = (quantile(errors_s, q) for q in WINDOW_QUANTILES)
    # A window always contains its estimate, however one-sided the errors.
    return max(0.0, -low), max(0.0, high)


@dataclass
class Samples:
    """History collected for ``learn``: the straight-line metres and the
    seconds of the legs driven between doors, by the local hour each set
    off in; the straight and driven (pings' path) metres between doors for
    the detour; service seconds; and errors (seconds) by bucket.

    Speeds come from whole legs, not from ping to ping: a parked phone's
    GPS error reads as slow driving, and the same error lengthens the
    pings' path, so the road speed is taken as the learned detour times
    the straight-line speed, and the two cancel in an estimate."""

    straight_m_by_hour: dict[int, float] = field(default_factory=dict)
    seconds_by_hour: dict[int, float] = field(default_factory=dict)
    straight_m: float = 0.0
    road_m: float = 0.0
    service_s: list[float] = field(default_factory=list)
    errors_by_bucket: dict[str, list[float]] = field(default_factory=dict)

    def add_leg(self, hour: int, straight_m: float, seconds: float) -> None:
        self.straight_m_by_hour[hour] = self.straight_m_by_hour.get(hour, 0.0) + straight_m
        self.seconds_by_hour[hour] = self.seconds_by_hour.get(hour, 0.0) + seconds

    def merge(self, other: Samples) -> None:
        for hour, metres in other.straight_m_by_hour.items():
            self.add_leg(hour, metres, other.seconds_by_hour.get(hour, 0.0))
        self.straight_m += other.straight_m
        self.road_m += other.road_m
        self.service_s.extend(other.service_s)
        for name, values in other.errors_by_bucket.items():
            self.errors_by_bucket.setdefault(name, []).extend(values)

    def add_error(self, stops_ahead: int, error_s: float) -> None:
        """An error made this many stops ahead, kept as it would have been
        at its bucket's reference (see ``spread``)."""
        self.errors_by_bucket.setdefault(bucket(stops_ahead), []).append(error_s / spread(stops_ahead))


# Below these amounts of history a figure is too noisy to beat the default.
MIN_HOUR_SECONDS = 300.0
MIN_DETOUR_STRAIGHT_M = 2_000.0
MIN_SERVICE_SAMPLES = 5


def learn(samples: Samples, fallback: Learned = DEFAULT_LEARNED) -> Learned:
    """``Learned`` from samples, each figure falling back to ``fallback``'s
    where the samples are too few (a new driver borrows the area's)."""
    detour = fallback.detour
    if samples.straight_m >= MIN_DETOUR_STRAIGHT_M and samples.road_m > 0:
        detour = min(3.0, max(1.0, samples.road_m / samples.straight_m))
    speeds = dict(fallback.speed_mps_by_hour)
    total_m = total_s = 0.0
    for hour, seconds in samples.seconds_by_hour.items():
        straight = samples.straight_m_by_hour.get(hour, 0.0)
        total_m += straight
        total_s += seconds
        if seconds >= MIN_HOUR_SECONDS and straight > 0:
            speeds[hour] = straight * detour / seconds
    default_speed = fallback.default_speed_mps
    if total_s >= MIN_HOUR_SECONDS and total_m > 0:
        default_speed = total_m * detour / total_s
    service = fallback.service_s
    if len(samples.service_s) >= MIN_SERVICE_SAMPLES:
        # The mean, not the median: the stops ahead add up, and the long
        # doors (a flat's stairs, a neighbour) are part of the sum.
        service = sum(samples.service_s) / len(samples.service_s)
    errors = dict(fallback.error_s_by_bucket)
    for name, values in samples.errors_by_bucket.items():
        sides = error_sides(values)
        if sides is not None:
            errors[name] = sides
    count = len(samples.service_s) + sum(len(v) for v in samples.errors_by_bucket.values())
    return Learned(
        speed_mps_by_hour=speeds,
        default_speed_mps=default_speed,
        detour=detour,
        service_s=service,
        error_s_by_bucket=errors,
        samples=fallback.samples + count,
    )


def path_m(points: Sequence[Point]) -> float:
    return sum(point_distance_m(a, b) for a, b in itertools.pairwise(points))


def departure(at: datetime, learned: Learned, visiting_since: datetime | None = None) -> datetime:
    """When the driver sets off for the stops ahead: now, or, while the
    driver is at a door whose scan has not come yet, once the door's
    typical service time is over."""
    if visiting_since is None:
        return at
    return max(at, visiting_since + timedelta(seconds=learned.service_s))
