"""What recomputing a route's ETAs costs: estimate_route over a 100-stop
route, against a plain loop over the same stops in the same run.

    .venv/bin/python bench/eta_cost.py [--stops 100] [--calls 2000] [--rounds 7]
    DATABASE_URL=postgres://... .venv/bin/python bench/eta_cost.py --history [--drivers 20 --days 14]

The model's call is the one a ping triggers: every stop ahead, the learned
speed of each leg's hour in the brand's time zone, the doors, the window
from learned errors by bucket. The baseline is the least any estimate must
do over the same stops: a haversine per leg, divided by one speed, summed.
Rounds alternate between the two; the medians and their ratio are printed.
Pure Python, no database.

With ``--history``: what a brand's first recompute of the day costs when
nothing was worked out before it (``eta_history.work_out``: the brand's
last 14 days read and replayed), on simulated days written to a database
of its own (test_<name> of DATABASE_URL, made and dropped), against a
plain read of the same stops and pings. The shared cache is the
in-process one (REDIS_URL is ignored).
"""

import argparse
import math
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shipments.alert_rules import distance_m
from shipments.demo_day import World
from shipments.eta_model import Point, estimate_route
from shipments.eta_scoring import History, replay


def learned_from_a_week():
    """A Learned as history makes it: a simulated week of four drivers."""
    history = History()
    days = World(seed=1, drivers=4).days(datetime(2026, 11, 2).date(), 5)
    for day in sorted(days, key=lambda d: (d.day, d.driver)):
        history.add(day, replay(day, history.learned(day.driver), every_s=300))
    return history.learned("van-1")


def route(count: int) -> list[tuple[int, Point]]:
    # A spiral of doors around the centre of town, ~150-400 m apart.
    out = []
    for k in range(count):
        angle, radius = k * 0.7, 0.004 + 0.0002 * k
        out.append((k + 1, Point(51.5074 + radius * math.cos(angle), -0.1278 + radius * math.sin(angle))))
    return out


def model(stops, learned, tz, calls: int) -> float:
    origin, at = Point(51.5, -0.13), datetime(2026, 11, 26, 8, 55, tzinfo=UTC)
    start = time.perf_counter()
    for _ in range(calls):
        estimate_route(origin=origin, at=at, stops=stops, learned=learned, tz=tz)
    return (time.perf_counter() - start) / calls


def plain_loop(stops, calls: int) -> float:
    origin = Point(51.5, -0.13)
    start = time.perf_counter()
    for _ in range(calls):
        here, total, out = origin, 0.0, []
        for _stop_id, door in stops:
            total += distance_m(here.lat, here.lng, door.lat, door.lng) / 7.0
            out.append(total)
            here = door
    return (time.perf_counter() - start) / calls


def history(drivers: int, days: int, rounds: int) -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.db import connection

    from shipments import eta_history
    from shipments.models import Brand, Driver, LocationPing, Route, Shipment, Stop

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        brand = Brand.objects.create(name="Bench", slug="bench", default_timezone="Europe/London")
        world = World(seed=1, drivers=drivers)
        first = datetime(2026, 11, 2).date()
        simulated = world.days(first, days)
        by_ref = {ref: Driver.objects.create(brand=brand, ref=ref).pk for ref in {d.driver for d in simulated}}
        pings = 0
        for day in simulated:
            route = Route.objects.create(driver_id=by_ref[day.driver], date=day.day)
            parcels = Shipment.objects.bulk_create(
                Shipment(
                    brand=brand,
                    tracking_number=f"B{s.stop_id}",
                    destination_lat=s.door.lat,
                    destination_lng=s.door.lng,
                    promised_window_start=s.promised[0],
                    promised_window_end=s.promised[1],
                )
                for s in day.stops
            )
            Stop.objects.bulk_create(
                Stop(
                    route=route,
                    shipment=parcel,
                    sequence=s.sequence,
                    completed_at=s.scanned_at,
                    visit_started_at=s.arrived_at,
                    visit_left_at=s.left_at,
                )
                for s, parcel in zip(day.stops, parcels, strict=True)
            )
            LocationPing.objects.bulk_create(
                (LocationPing(driver_id=by_ref[day.driver], lat=p.lat, lng=p.lng, recorded_at=t) for t, p in day.pings),
                batch_size=5000,
            )
            pings += len(day.pings)
        on = first + timedelta(days=days)
        print(f"history: {drivers} drivers x {days} days, {pings} pings, {Stop.objects.count()} stops")

        def plain() -> float:
            start = time.perf_counter()
            list(Stop.objects.values_list("pk", "sequence", "completed_at", "visit_started_at", "visit_left_at"))
            since = datetime.combine(on - timedelta(days=eta_history.PING_DAYS), datetime.min.time(), UTC)
            list(
                LocationPing.objects.filter(recorded_at__gte=since).values_list(
                    "driver_id", "recorded_at", "lat", "lng"
                )
            )
            return time.perf_counter() - start

        def work_out() -> float:
            start = time.perf_counter()
            eta_history.work_out(brand, on=on)
            return time.perf_counter() - start

        mine, base = [], []
        for _ in range(rounds):
            base.append(plain())
            mine.append(work_out())
        m, p = statistics.median(mine), statistics.median(base)
        print(f"plain read of the stops and the last {eta_history.PING_DAYS} days' pings: {p * 1000:.0f} ms")
        print(f"eta_history.work_out (read, replay, learn): {m * 1000:.0f} ms")
        print(f"ratio work_out / plain read: {m / p:.1f}")
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--history", action="store_true", help="The cost of working a brand's history out.")
    parser.add_argument("--drivers", type=int, default=20)
    parser.add_argument("--days", type=int, default=14)
    options = parser.parse_args()
    if options.history:
        history(options.drivers, options.days, min(options.rounds, 3))
        return
    learned = learned_from_a_week()
    stops = route(options.stops)
    tz = ZoneInfo("Europe/London")
    estimates = estimate_route(
        origin=Point(51.5, -0.13), at=datetime(2026, 11, 26, 8, 55, tzinfo=UTC), stops=stops, learned=learned, tz=tz
    )
    assert len(estimates) == options.stops
    mine, plain = [], []
    for _ in range(options.rounds):
        mine.append(model(stops, learned, tz, options.calls))
        plain.append(plain_loop(stops, options.calls))
    m, p = statistics.median(mine), statistics.median(plain)
    print(f"stops {options.stops}, calls {options.calls} x {options.rounds} rounds (medians)")
    print(f"plain loop (haversine / one speed): {p * 1000:.3f} ms per route")
    print(f"estimate_route (learned hours, doors, windows): {m * 1000:.3f} ms per route")
    print(f"ratio estimate_route / plain loop: {m / p:.2f}")


if __name__ == "__main__":
    main()
