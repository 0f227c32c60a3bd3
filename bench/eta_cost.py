"""What recomputing a route's ETAs costs: estimate_route over a 100-stop
route, against a plain loop over the same stops in the same run.

    .venv/bin/python bench/eta_cost.py [--stops 100] [--calls 2000] [--rounds 7]

The model's call is the one a ping triggers: every stop ahead, the learned
speed of each leg's hour in the brand's time zone, the doors, the window
from learned errors by bucket. The baseline is the least any estimate must
do over the same stops: a haversine per leg, divided by one speed, summed.
Rounds alternate between the two; the medians and their ratio are printed.
Pure Python, no database.
"""

import argparse
import math
import statistics
import sys
import time
from datetime import UTC, datetime
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
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
