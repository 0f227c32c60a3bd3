"""Simulated delivery days with the variation a real one has, for the ETA's
backtest (``eta_backtest --simulate``) and the demo day
(``simulate_deliveries``).

Pure Python (random with a seed, no Django): the same seed gives the same
days. A driver loads the van at the depot at 08:00 local time and drives
the route's stops nearest-first; traffic slows the roads by hour (the
morning and evening peaks, lunch), each driver has a pace of their own and
each leg its own luck; the road is longer than the straight line by a
detour that varies per leg; each door takes its own time (a flat's stairs,
a neighbour, a chat); the phone pings every few seconds with GPS error;
on some days a driver swaps two stops of the route. The promise is made
the evening before from the plan, as two-hour slots.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from shipments.eta_model import Point, point_distance_m
from shipments.eta_scoring import Day, DayStop

LONDON = ZoneInfo("Europe/London")
CITY = Point(51.5074, -0.1278)
METRES_PER_DEGREE = 111_320.0
DAY_STARTS = time(8, 0)
FREE_FLOW_MPS = 9.0
# Traffic by local hour: the share of the free-flow speed the roads allow.
TRAFFIC_BY_HOUR = {
    7: 0.70, 8: 0.58, 9: 0.72, 10: 0.90, 11: 0.92, 12: 0.80, 13: 0.82,
    14: 0.92, 15: 0.85, 16: 0.68, 17: 0.58, 18: 0.70, 19: 0.85,
}  # fmt: skip
SLOT = timedelta(hours=2)


def offset(point: Point, east_m: float, north_m: float) -> Point:
    lat = point.lat + north_m / METRES_PER_DEGREE
    lng = point.lng + east_m / (METRES_PER_DEGREE * math.cos(math.radians(point.lat)))
    return Point(lat, lng)


def toward(a: Point, b: Point, fraction: float) -> Point:
    return Point(a.lat + (b.lat - a.lat) * fraction, a.lng + (b.lng - a.lng) * fraction)


def nearest_first(start: Point, doors: list[Point]) -> list[int]:
    """Indexes of ``doors`` in the order a planner would drive them."""
    order, here, left = [], start, list(range(len(doors)))
    while left:
        best = min(left, key=lambda i: point_distance_m(here, doors[i]))
        left.remove(best)
        order.append(best)
        here = doors[best]
    return order


@dataclass
class Driver:
    ref: str
    district: Point
    pace: float  # their share of the traffic's speed
    door_pace: float  # their share of the typical time at a door


class World:
    """Drivers with districts and habits, and their days one after another."""

    def __init__(self, *, seed: int, drivers: int = 4, stops: tuple[int, int] = (22, 34), tz: tzinfo = LONDON):
        self.rng = random.Random(seed)
        self.stops = stops
        self.tz = tz
        self.next_stop_id = 1
        self.drivers = [
            Driver(
                ref=f"van-{k + 1}",
                district=offset(CITY, self.rng.uniform(-6000, 6000), self.rng.uniform(-5000, 5000)),
                pace=self.rng.uniform(0.85, 1.12),
                door_pace=self.rng.uniform(0.75, 1.35),
            )
            for k in range(drivers)
        ]

    def days(self, first: date, count: int) -> list[Day]:
        out = []
        for n in range(count):
            for driver in self.drivers:
                out.append(self.day(driver, first + timedelta(days=n)))
        return out

    def traffic(self, moment: datetime) -> float:
        local = moment.astimezone(self.tz)
        here = TRAFFIC_BY_HOUR.get(local.hour, 0.9)
        later = TRAFFIC_BY_HOUR.get((local.hour + 1) % 24, 0.9)
        # Smooth across the hour, as traffic builds and eases.
        return here + (later - here) * (local.minute / 60)

    def service_seconds(self, driver: Driver, kind: float) -> float:
        # Most doors take one to three minutes; a flat or a neighbour far more.
        seconds = self.rng.lognormvariate(math.log(110), 0.45) * driver.door_pace
        if kind < 0.15:
            seconds += self.rng.uniform(120, 360)
        return min(seconds, 900.0)

    def day(self, driver: Driver, on: date) -> Day:
        rng = self.rng
        depot = offset(driver.district, rng.uniform(-800, 800), rng.uniform(-800, 800))
        count = rng.randint(*self.stops)
        doors = [offset(driver.district, rng.gauss(0, 1400), rng.gauss(0, 1400)) for _ in range(count)]
        order = nearest_first(depot, doors)
        start = datetime.combine(on, DAY_STARTS, self.tz) + timedelta(seconds=rng.uniform(-600, 900))
        stops = []
        for sequence, index in enumerate(order, start=1):
            stops.append(DayStop(stop_id=self.next_stop_id, sequence=sequence, door=doors[index]))
            self.next_stop_id += 1
        self.promise(stops, depot, start)
        driven = list(range(len(stops)))
        if len(stops) > 6 and rng.random() < 0.5:
            k = rng.randrange(1, len(stops) - 2)
            driven[k], driven[k + 1] = driven[k + 1], driven[k]
        day = Day(driver=driver.ref, day=on, tz=self.tz, depot=depot, stops=stops)
        gps_error = rng.uniform(4, 15)
        interval = rng.uniform(5, 15)
        clock, here = start, depot
        day.pings.append((clock, self.noisy(here, gps_error)))
        for index in driven:
            stop = stops[index]
            clock = self.drive(day, driver, clock, here, stop.door, gps_error, interval)
            stop.arrived_at = clock
            stay = self.service_seconds(driver, rng.random())
            scan_after = stay * rng.uniform(0.7, 0.95)
            clock = self.stand(day, clock, stop.door, stay, gps_error, interval)
            stop.scanned_at = stop.arrived_at + timedelta(seconds=scan_after)
            stop.left_at = clock
            day.driven.append(stop.stop_id)
            here = stop.door
        self.drive(day, driver, clock, here, depot, gps_error, interval)
        return day

    def promise(self, stops: list[DayStop], depot: Point, start: datetime) -> None:
        """The evening-before promise: the plan at a constant speed, each
        stop given the two-hour slot its planned time falls in."""
        clock, here = start, depot
        for stop in stops:
            clock += timedelta(seconds=point_distance_m(here, stop.door) * 1.3 / 7.0 + 150)
            local = clock.astimezone(self.tz)
            slot_start = local.replace(hour=local.hour - local.hour % 2, minute=0, second=0, microsecond=0)
            stop.promised = (slot_start, slot_start + SLOT)
            here = stop.door

    def noisy(self, point: Point, error_m: float) -> Point:
        return offset(point, self.rng.gauss(0, error_m), self.rng.gauss(0, error_m))

    def road(self, a: Point, b: Point) -> list[Point]:
        """A road a detour longer than the line: out to a corner off the
        straight line and on to the door."""
        straight = point_distance_m(a, b)
        if straight < 1:
            return [a, b]
        detour = self.rng.uniform(1.15, 1.55)
        half = straight * detour / 2
        side = math.sqrt(max(0.0, half**2 - (straight / 2) ** 2)) * self.rng.choice((-1, 1))
        mid = toward(a, b, 0.5)
        # A unit vector across the line, in metres east and north.
        east = (b.lng - a.lng) * METRES_PER_DEGREE * math.cos(math.radians(a.lat))
        north = (b.lat - a.lat) * METRES_PER_DEGREE
        return [a, offset(mid, -north / straight * side, east / straight * side), b]

    def drive(self, day: Day, driver: Driver, clock: datetime, a: Point, b: Point, error_m, interval) -> datetime:
        """Along the road to the door, at the hour's traffic, pinging as it goes."""
        if point_distance_m(a, b) < 1:
            return clock
        road = self.road(a, b)
        luck = self.rng.lognormvariate(0, 0.12)
        for start, end in itertools.pairwise(road):
            length = point_distance_m(start, end)
            done = 0.0
            while done < length:
                speed = FREE_FLOW_MPS * self.traffic(clock) * driver.pace * luck
                step = min(interval, (length - done) / speed)
                done += speed * step
                clock += timedelta(seconds=step)
                if step >= interval * 0.999:
                    day.pings.append((clock, self.noisy(toward(start, end, min(1.0, done / length)), error_m)))
        day.pings.append((clock, self.noisy(b, error_m)))
        return clock

    def stand(self, day: Day, clock: datetime, door: Point, seconds: float, error_m, interval) -> datetime:
        end = clock + timedelta(seconds=seconds)
        while clock + timedelta(seconds=interval) < end:
            clock += timedelta(seconds=interval)
            day.pings.append((clock, self.noisy(door, error_m)))
        return end


@dataclass(frozen=True)
class Fix:
    """One ping of the live demo: where, how fast, which way, and how many
    seconds of the day it stands for."""

    point: Point
    speed_mps: float
    heading_deg: float
    seconds: float


class Van:
    """The live demo's van (``simulate_deliveries``): the same roads,
    traffic, doors and GPS error as the simulated days, as pings a few
    seconds apart in the wall clock's time, so the ETA the portal works out
    from them moves as it would on a real day."""

    def __init__(self, world: World, at: Point, *, gps_error_m: float = 8.0):
        self.world = world
        self.driver = world.drivers[0]
        self.position = at
        self.gps_error_m = gps_error_m

    def drive(self, target: Point, moment: datetime, *, step_s: float, steps: int = 0) -> list[Fix]:
        """The fixes on the way to ``target``: one every ``step_s`` seconds
        of driving, or, with ``steps``, that many whatever the distance (a
        test's day that must pass at once)."""
        road = self.world.road(self.position, target)
        length = path_length(road)
        if length < 1:
            self.position = target
            return []
        luck = self.world.rng.lognormvariate(0, 0.12)
        fixes, done, clock = [], 0.0, moment
        while done < length:
            speed = FREE_FLOW_MPS * self.world.traffic(clock) * self.driver.pace * luck
            stride = length / steps if steps else speed * step_s
            seconds = stride / speed
            done = min(length, done + stride)
            clock += timedelta(seconds=seconds)
            here = along(road, done)
            ahead = along(road, min(length, done + 1.0)) if done < length else target
            fixes.append(Fix(self.world.noisy(here, self.gps_error_m), speed, heading(here, ahead), seconds))
        self.position = target
        return fixes

    def door_seconds(self) -> float:
        """How long this door takes: most one to three minutes, some far more."""
        return self.world.service_seconds(self.driver, self.world.rng.random())

    def stand(self, seconds: float, *, step_s: float) -> list[Fix]:
        count = max(1, int(seconds // step_s)) if step_s > 0 else 1
        return [Fix(self.world.noisy(self.position, self.gps_error_m), 0.0, 0.0, seconds / count) for _ in range(count)]

    def swapped(self, count: int) -> tuple[int, int] | None:
        """Two neighbouring stops of a route of ``count`` the driver takes
        the other way round, on about half the rounds."""
        if count < 3 or self.world.rng.random() < 0.5:
            return None
        k = self.world.rng.randrange(0, count - 1)
        return k, k + 1


def path_length(road: list[Point]) -> float:
    return sum(point_distance_m(a, b) for a, b in itertools.pairwise(road))


def along(road: list[Point], metres: float) -> Point:
    for a, b in itertools.pairwise(road):
        length = point_distance_m(a, b)
        if metres <= length:
            return toward(a, b, metres / length if length else 1.0)
        metres -= length
    return road[-1]


def heading(a: Point, b: Point) -> float:
    east = (b.lng - a.lng) * math.cos(math.radians(a.lat))
    return math.degrees(math.atan2(east, b.lat - a.lat)) % 360
