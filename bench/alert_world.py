"""The simulated week bench/alerts.py replays: drivers' days, depot feeds and
injected faults, as a timeline of what the portal would be sent, with the
ground truth of each fault kept beside it.

Pure Python (no Django, no database): the same seed gives the same week.
Each driver has a district; each day they load the van at the depot, drive
their route at town speeds with a ping every 5-15 s (GPS error 10-30 m, one
level a driver-day), wait 30 s-6 min at each door and scan at the end of the
wait. Windows and ETAs are promised the evening before from the day's plan,
so that on a normal day nothing is late. Faults and hard negatives are
placed among the stops and in the depot's feed; each stop says which case
it is (``Stop.case``).

The missed-scan truth comes from the simulator's intent: the van stood
still at the stop (at the door, or parked up to 60 m away) for 2.5-6 min
and left without a scan; the rule's moment is the recorded_at of the first
ping 300 m or more from the destination after that. Every other kind's
truth is worked out from the facts the timeline sends (bench/alert_truth.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from shipments.alert_rules import distance_m

WEEK_START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
CITY = (51.5074, -0.1278)
METRES_PER_DEGREE = 111_320.0
# Non-consecutive stops of a route are at least this far apart, so that a
# wait at one stop is never a dwell at another that comes later.
APART_M = 200.0
LEAVE_M = 300.0
# How far from the door the van stands, by case (metres); at the kerb otherwise.
PARK_DISTANCE = {
    "parked_60m": (55, 62),
    "missed_scan_parked": (50, 60),
    "away_150m": (140, 155),
    "delivered_away": (260, 600),
}


@dataclass(frozen=True)
class Event:
    number: str
    status: str
    occurred_at: datetime
    external_id: str
    substatus: str = ""
    lat: float | None = None
    lng: float | None = None


@dataclass(frozen=True)
class Ping:
    driver: str
    lat: float
    lng: float
    recorded_at: datetime
    accuracy_m: float
    speed_mps: float


@dataclass
class Parcel:
    number: str
    lat: float
    lng: float
    created_at: datetime
    window_start: datetime
    window_end: datetime
    eta: datetime | None = None
    case: str = "normal"


@dataclass(frozen=True)
class MissedScan:
    number: str
    case: str
    moment: datetime
    resolved_at: datetime | None


@dataclass
class World:
    """What happens, in order of arrival: (at, order, what, payload)."""

    timeline: list[tuple[datetime, int, str, object]] = field(default_factory=list)
    parcels: dict[str, Parcel] = field(default_factory=dict)
    missed_scans: list[MissedScan] = field(default_factory=list)
    cases: dict[str, str] = field(default_factory=dict)
    ends_at: datetime = WEEK_START
    rate_day: tuple[str, date, list[str]] | None = None

    def add(self, at: datetime, what: str, payload: object) -> None:
        self.timeline.append((at, len(self.timeline), what, payload))

    def mark(self, number: str, case: str) -> None:
        """Name what happened to an ordinary stop (a fault's name stays)."""
        if self.cases.get(number, "normal") == "normal":
            self.cases[number] = case
        self.parcels[number].case = case


def offset(lat: float, lng: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        lat + north_m / METRES_PER_DEGREE,
        lng + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat))),
    )


def toward(a: tuple[float, float], b: tuple[float, float], fraction: float) -> tuple[float, float]:
    return a[0] + (b[0] - a[0]) * fraction, a[1] + (b[1] - a[1]) * fraction


class Generator:
    def __init__(self, *, seed: int, drivers: int, stops_per_day: int, days: int):
        self.rng = random.Random(seed)
        self.drivers, self.stops_per_day, self.days = drivers, stops_per_day, days
        # Long enough after the last route for its failed attempts' day to pass.
        self.world = World(ends_at=WEEK_START + timedelta(days=days, hours=20))
        self.serial = 0
        self.retries: dict[int, list[str]] = {k: [] for k in range(drivers)}

    # -- the week --------------------------------------------------------

    def week(self) -> World:
        for day in range(self.days):
            base = WEEK_START + timedelta(days=day)
            for k in range(self.drivers):
                share = self.stops_per_day // self.drivers + (k < self.stops_per_day % self.drivers)
                self.driver_day(k, base, share)
            self.depot_faults(base)
        self.world.timeline.sort(key=lambda item: (item[0], item[1]))
        return self.world

    def new_parcel(self, lat, lng, created_at, planned: datetime, case="normal") -> Parcel:
        self.serial += 1
        number = f"AW{self.serial:06d}"
        start = planned - timedelta(minutes=self.rng.choice([60, 90]))
        end = planned + timedelta(minutes=self.rng.choice([60, 90]))
        parcel = Parcel(number, lat, lng, created_at, start, end, eta=planned, case=case)
        self.world.parcels[number] = parcel
        self.world.cases[number] = case
        self.world.add(created_at, "create", parcel)
        self.event(created_at, number, "info_received")
        return parcel

    def event(self, at: datetime, number: str, status: str, substatus="", where=None, occurred_at=None) -> None:
        self.serial += 1
        lat, lng = where or (None, None)
        item = Event(number, status, occurred_at or at, f"aw-{self.serial}", substatus, lat, lng)
        self.world.add(at, "events", [item])

    def feed(self, at: datetime, items: list[Event]) -> None:
        """A carrier's batch (the depot's scans), one call."""
        if items:
            self.world.add(at, "events", items)

    def minute(self, base: datetime, lo_h: float, hi_h: float) -> datetime:
        return base + timedelta(seconds=round(self.rng.uniform(lo_h, hi_h) * 3600))

    # -- a driver's day --------------------------------------------------

    def district(self, k: int) -> tuple[float, float]:
        angle = 2 * math.pi * k / max(self.drivers, 1)
        return offset(*CITY, 6000 * math.cos(angle), 6000 * math.sin(angle))

    def destinations(self, k: int, count: int, fixed: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """A random walk through the district: a third of the stops on the
        same street (40-150 m on), the rest 250 m-1.2 km on; never within
        APART_M of a stop that is not its neighbour on the route."""
        centre = self.district(k)
        points: list[tuple[float, float]] = []
        here = offset(*centre, self.rng.uniform(-500, 500), self.rng.uniform(-500, 500))
        while len(points) < count:
            for _ in range(200):
                step = self.rng.uniform(40, 150) if self.rng.random() < 0.35 else self.rng.uniform(250, 1200)
                angle = self.rng.uniform(0, 2 * math.pi)
                candidate = offset(*here, step * math.cos(angle), step * math.sin(angle))
                if distance_m(*candidate, *centre) > 3500:
                    continue
                others = points[:-1] + fixed
                if all(distance_m(*candidate, *p) >= APART_M for p in others):
                    break
            else:
                candidate = offset(*centre, self.rng.uniform(-3000, 3000), self.rng.uniform(-3000, 3000))
            points.append(candidate)
            here = candidate
        return points

    def driver_day(self, k: int, base: datetime, share: int) -> None:
        rng, driver = self.rng, f"van-{k + 1}"
        depot = offset(*self.district(k), 2500, 0)
        retries = self.retries[k]
        self.retries[k] = []
        kept = [(self.world.parcels[n].lat, self.world.parcels[n].lng) for n in retries]
        fresh = self.destinations(k, max(share - len(retries), 1), kept)
        loading = self.minute(base, 7.3, 7.6)
        # Which stops carry a fault or a hard negative.
        cases = ["missed_scan", "delivered_away", "away_150m", "parked_60m", "parked_60m", "long_wait", "long_wait"]
        cases += ["failed_retry", "failed_retry", "failed_no_retry", "drive_by", "drive_by"]
        cases += ["missed_scan_parked"] if rng.random() < 0.5 else []
        cases += ["normal"] * max(0, len(fresh) - len(cases))
        rng.shuffle(cases)
        # A van that stood at the previous door within the near distance of
        # this one, then drove to a wrong address beyond the leave distance,
        # made a missed scan by the rule's letter: keep far parking off
        # same-street stops.
        for i, case in enumerate(cases[: len(fresh)]):
            if case == "delivered_away" and i and distance_m(*fresh[i - 1], *fresh[i]) < 250:
                for j in range(1, len(fresh)):
                    if cases[j] == "normal" and distance_m(*fresh[j - 1], *fresh[j]) >= 250:
                        cases[i], cases[j] = cases[j], cases[i]
                        break
        # A van parked 50-150 m from a door with another door nearer it is,
        # by its pings, at that other door: no rule can tell whose stop the
        # wait was. Keep the far-parking cases where a spot away from every
        # other door exists (as parking() promises).
        doors = fresh + kept
        for i, case in enumerate(cases[: len(fresh)]):
            if not self.can_park(fresh[i], case, doors):
                for j in range(len(fresh)):
                    if cases[j] == "normal" and self.can_park(fresh[j], case, doors):
                        cases[i], cases[j] = cases[j], cases[i]
                        break
        waits = [self.wait(case) for case in cases[: len(fresh)]]
        stops = [(p, c, w) for p, c, w in zip(fresh, cases, waits, strict=False)]

        # The plan: when the van would reach each stop on a day without trouble.
        legs, clock, here = [], loading + timedelta(minutes=10), depot
        for point, case, wait in stops:
            speed = rng.uniform(5, 9)
            arrive = clock + timedelta(seconds=distance_m(*here, *point) / speed + 20)
            legs.append((here, point, speed, clock, arrive, case, wait))
            clock, here = arrive + timedelta(seconds=wait), point
        for number in retries:
            parcel = self.world.parcels[number]
            point = (parcel.lat, parcel.lng)
            speed = rng.uniform(5, 9)
            arrive = clock + timedelta(seconds=distance_m(*here, *point) / speed + 20)
            legs.append((here, point, speed, clock, arrive, "retry", self.wait("normal")))
            clock, here = arrive + timedelta(seconds=legs[-1][-1]), point

        # Parcels: created and promised the day before, at the depot overnight.
        numbers = list(retries)
        for index, (_, point, _, _, arrive, case, _) in enumerate(legs[: len(fresh)]):
            parcel = self.new_parcel(*point, self.minute(base - timedelta(days=1), 10, 18), arrive, case)
            numbers.insert(index, parcel.number)
        overnight = [
            Event(n, "in_transit", self.minute(base, -3, 5), f"it-{n}-{base:%d}") for n in numbers[: len(fresh)]
        ]
        for slot in range(0, 8 * 4):
            at = base + timedelta(hours=-3, minutes=15 * (slot + 1))
            self.feed(at, [e for e in overnight if at - timedelta(minutes=15) < e.occurred_at <= at])
        on_van = list(numbers)
        if rng.random() < 1 / 3:  # loaded, but left off the route
            extra = self.new_parcel(
                *offset(*depot, -900, 400),
                self.minute(base - timedelta(days=1), 10, 18),
                loading + timedelta(hours=3),
                "stuck_on_van",
            )
            self.feed(
                self.minute(base, 0, 4),
                [Event(extra.number, "in_transit", self.minute(base, -1, 0), f"it-{extra.number}")],
            )
            on_van.append(extra.number)
            self.event(base + timedelta(hours=18, minutes=30), extra.number, "failed_attempt", "rescheduled")
            self.retries[k].append(extra.number)
        self.world.add(loading - timedelta(minutes=5), "route", (driver, base.date(), numbers))
        self.feed(loading, [Event(n, "out_for_delivery", loading, f"ofd-{n}-{base:%d}") for n in on_van])
        if self.world.rate_day is None:
            self.world.rate_day = (driver, base.date(), numbers)

        breakdown = self.breakdown(legs) if rng.random() < 0.3 and len(legs) > 2 else None
        self.drive(k, driver, legs, numbers, breakdown, base, depot)

    def wait(self, case: str) -> float:
        if case in ("missed_scan", "missed_scan_parked", "parked_60m"):
            return self.rng.uniform(150, 360)
        if case == "long_wait":
            return self.rng.uniform(480, 900)
        return self.rng.uniform(30, 360)

    def breakdown(self, legs) -> tuple[int, float, tuple[float, float]] | None:
        """A van that stands for 1.5-3 h mid-leg, somewhere no stop is near
        (or it would be a dwell at a door)."""
        points = [leg[1] for leg in legs]
        for index in self.rng.sample(range(1, len(legs)), k=min(5, len(legs) - 1)):
            spot = toward(legs[index][0], legs[index][1], 0.5)
            if all(distance_m(*spot, *p) >= 250 for p in points):
                return index, self.rng.uniform(1.5, 3) * 3600, spot
        return None

    def drive(self, k, driver, legs, numbers, breakdown, base, depot) -> None:
        rng, world = self.rng, self.world
        accuracy = rng.uniform(10, 30)
        sigma = accuracy / 1.2533  # a mean error of `accuracy` metres
        pings: list[Ping] = []
        missed = []

        def ping(at: datetime, where, speed):
            lat, lng = offset(*where, rng.gauss(0, sigma), rng.gauss(0, sigma))
            pings.append(Ping(driver, lat, lng, at, round(accuracy, 1), round(speed, 1)))

        clock = self.next_ping = legs[0][3]
        here = legs[0][0]
        for index, (_, point, speed, _, _, case, wait) in enumerate(legs):
            number, start = numbers[index], here
            if breakdown and breakdown[0] == index:
                _, seconds, spot = breakdown
                clock = self.travel(clock, start, spot, speed, ping)
                clock = self.stand(clock, spot, seconds, ping)
                told = clock - timedelta(seconds=seconds) + timedelta(minutes=15)
                for later in numbers[index:]:
                    parcel = world.parcels[later]
                    if parcel.eta is not None:
                        world.add(told, "edit", (later, {"eta": parcel.eta + timedelta(seconds=seconds)}))
                    if parcel.case == "normal":
                        world.mark(later, "van_late")
                start = spot
            park = self.parking(point, case, [leg[1] for leg in legs if leg[1] != point])
            clock = self.stand(self.travel(clock, start, park, speed, ping), park, wait, ping)
            here = park
            door = offset(*point, rng.gauss(0, sigma), rng.gauss(0, sigma))
            if case in ("delivered_away", "away_150m"):
                door = offset(*park, rng.gauss(0, sigma / 3), rng.gauss(0, sigma / 3))
            if case in ("failed_retry", "failed_no_retry"):
                self.event(clock, number, "failed_attempt", "recipient_unavailable", door)
                if case == "failed_retry":
                    if rng.random() < 0.5:  # a new window; otherwise just tomorrow's attempt
                        tomorrow = base + timedelta(days=1, hours=rng.choice([9, 11, 13]))
                        fields = {
                            "promised_window_start": tomorrow,
                            "promised_window_end": tomorrow + timedelta(hours=3),
                        }
                        world.add(base + timedelta(hours=19), "edit", (number, fields))
                    self.retries[k].append(number)
            elif case.startswith("missed_scan"):
                late_scan = None
                if rng.random() < 0.5:  # scanned at the end of the day, as of the drop
                    late_scan = base + timedelta(hours=rng.uniform(15, 17))
                    self.event(late_scan, number, "delivered", where=door, occurred_at=clock)
                missed.append((number, case, point, clock, late_scan))
            else:
                self.event(clock, number, "delivered", where=door)
            if case == "drive_by" and index + 2 < len(legs) and distance_m(*point, *legs[index + 1][1]) >= APART_M:
                # On to the next stop by way of a later stop's door, slowing
                # there for up to 45 s (a junction), without stopping. Never
                # from a stop on the next one's street: a wait there, a
                # detour beyond the leave distance and a return is a missed
                # scan by the rule's letter (a trap the rule cannot tell).
                later = rng.randrange(index + 2, len(legs))
                by = offset(*legs[later][1], rng.uniform(-20, 20), rng.uniform(-20, 20))
                clock = self.stand(self.travel(clock, park, by, speed, ping), by, rng.uniform(0, 45), ping)
                world.mark(numbers[later], "driven_by")
                here = by
        self.travel(clock, here, depot, legs[-1][2], ping)  # back to the depot
        for p in pings:
            world.add(p.recorded_at, "ping", p)
        for number, case, point, scan_due, late_scan in missed:
            left = next(
                p.recorded_at for p in pings if p.recorded_at > scan_due and distance_m(p.lat, p.lng, *point) >= LEAVE_M
            )
            world.missed_scans.append(MissedScan(number, case, left, late_scan))

    @staticmethod
    def can_park(point, case, doors) -> bool:
        """Whether parking() can find this case's spot for the stop: one at
        its distance, 160 m from every other door (tried every 10 degrees
        at the distance's middle)."""
        lo, hi = PARK_DISTANCE.get(case, (3, 20))
        if lo < 25:
            return True
        r = (lo + hi) / 2
        others = [d for d in doors if d != point]
        for step in range(36):
            angle = math.radians(10 * step)
            spot = offset(*point, r * math.cos(angle), r * math.sin(angle))
            if all(distance_m(*spot, *other) >= 160 for other in others):
                return True
        return False

    def parking(self, point, case, others):
        """Where the van stands for a stop: at the kerb, or as the case says,
        but never within 160 m of another stop's door (or standing there
        would be a dwell at that stop too)."""
        lo, hi = PARK_DISTANCE.get(case, (3, 20))
        for _ in range(100):
            angle, r = self.rng.uniform(0, 2 * math.pi), self.rng.uniform(lo, hi)
            park = offset(*point, r * math.cos(angle), r * math.sin(angle))
            if r < 25 or all(distance_m(*park, *other) >= 160 for other in others):
                break
        return park

    def travel(self, clock, start, end, speed, ping) -> datetime:
        """Drive from start to end in a straight line (20 s to pull in),
        pinging on the way; returns the arrival."""
        driving = distance_m(*start, *end) / speed
        arrive = clock + timedelta(seconds=driving + 20)
        while self.next_ping < arrive:
            t = (self.next_ping - clock).total_seconds()
            ping(
                self.next_ping,
                toward(start, end, min(t / driving, 1.0) if driving else 1.0),
                speed if t < driving else 0.0,
            )
            self.next_ping += timedelta(seconds=self.rng.uniform(5, 15))
        return arrive

    def stand(self, clock, where, seconds, ping) -> datetime:
        """Stand still for this long, pinging; returns when it moves on."""
        until = clock + timedelta(seconds=seconds)
        while self.next_ping < until:
            ping(self.next_ping, where, 0.0)
            self.next_ping += timedelta(seconds=self.rng.uniform(5, 15))
        return until

    # -- the depot's faults ----------------------------------------------

    def depot_faults(self, base: datetime) -> None:
        """Each day: parcels stuck at the depot (one rescanned just under
        the limit), one the sender never handed over, two carrier exceptions."""
        here = offset(*CITY, 0, -9000)
        for case in ("stuck_depot", "stuck_depot", "held_23h30", "stuck_info", "exception_back", "exception_return"):
            planned = self.minute(base, 9, 14)
            spot = offset(*here, self.rng.uniform(-3000, 3000), self.rng.uniform(-3000, 3000))
            parcel = self.new_parcel(*spot, self.minute(base - timedelta(days=1), 10, 18), planned, case)
            n, scanned = parcel.number, self.minute(base, -3, 4)
            if case == "stuck_info":
                self.event(parcel.created_at + timedelta(hours=36), n, "cancelled")
                continue
            if case.startswith("exception"):
                self.event(scanned, n, "exception", "damaged")
                if case == "exception_back":
                    self.event(scanned + timedelta(hours=20), n, "in_transit")
                    self.courier(parcel, scanned + timedelta(hours=44))
                else:
                    self.event(scanned + timedelta(hours=26), n, "returned_to_sender")
                continue
            self.event(scanned, n, "in_transit")
            again = scanned + (timedelta(hours=30) if case == "stuck_depot" else timedelta(hours=23, minutes=30))
            self.event(again, n, "in_transit", "delayed")
            self.courier(parcel, again + timedelta(hours=20))

    def courier(self, parcel: Parcel, at: datetime) -> None:
        """Out and delivered by a partner without pings, at the door."""
        self.event(at - timedelta(hours=2), parcel.number, "out_for_delivery")
        self.event(at, parcel.number, "delivered", where=(parcel.lat, parcel.lng))
