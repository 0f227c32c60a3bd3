"""What the computed ETA costs the ping path: a van's pings recorded one per
call through ``drivers.record_locations`` (what POST /api/v1/drivers/.../
locations calls), with the ETA off and on, rounds alternating, in one run.

    .venv/bin/python bench/eta_pings.py [--stops 40] [--pings 600] [--rounds 5]

Three ways, each on a fresh copy of the same route (``--stops`` parcels out
for delivery along a line) and the same pings:

- off: ``settings.ETA_ON_PINGS`` False (the missed-scan rule still follows
  the pings, as in production);
- on: the production path: after each commit the driver's routes are looked
  up and a Redis key claims the route's recompute for ETA_DEBOUNCE_SECONDS;
  the claim's winner enqueues the task (a worker's work, not timed here:
  its cost is the third row's difference, once per debounce per route);
- on, every ping: no debounce, the whole route recomputed in the request
  (``ETA_DEBOUNCE_SECONDS=0``): the worst case, what a deployment without
  Redis pays.

Target: on >= 0.7 of off. It makes and drops its own database (test_<name>
of DATABASE_URL, default postgres://postgres@127.0.0.1:5432/portal_bench_eta);
the tasks queued go to REDIS_URL (default redis://127.0.0.1:6379/4, emptied
at the end).
"""

import argparse
import math
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_eta")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/4")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench._setup import parcel_fields  # noqa: E402
from shipments import drivers, services  # noqa: E402
from shipments.models import Brand, Shipment  # noqa: E402
from shipments.services import NewEvent  # noqa: E402

TARGET_RATIO = 0.7
DEPOT = (51.5034, -0.1276)
WAYS = {
    "off": {"ETA_ON_PINGS": False},
    "on": {"ETA_ON_PINGS": True},
    "on, every ping": {"ETA_ON_PINGS": True, "ETA_DEBOUNCE_SECONDS": 0},
}


def east(metres: float) -> tuple[float, float]:
    return DEPOT[0], DEPOT[1] + metres / (111_195 * math.cos(math.radians(DEPOT[0])))


def route_copy(brand: Brand, name: str, stops: int, now) -> str:
    """A van's route today: ``stops`` parcels out for delivery, 300 m apart."""
    numbers = [f"{name}-{i:03d}" for i in range(stops)]
    for i, number in enumerate(numbers):
        lat, lng = east(500 + 300 * i)
        fields = {**parcel_fields(now), "destination_lat": lat, "destination_lng": lng}
        services.create_shipment(brand=brand, tracking_number=number, **fields)
    services.record_brand_events(
        brand=brand,
        items=[
            (n, NewEvent(status="out_for_delivery", occurred_at=now - timedelta(hours=1), external_id=f"o-{n}"))
            for n in numbers
        ],
    )
    drivers.set_route(brand=brand, driver_ref=name, date=timezone.localdate(), tracking_numbers=numbers)
    return name


def record(brand: Brand, ref: str, pings: int, start) -> float:
    """Pings 5 s apart at ~8 m/s along the route; returns pings/s."""
    elapsed = 0.0
    for i in range(pings):
        lat, lng = east(8.0 * 5 * i)
        ping = drivers.Ping(lat=lat, lng=lng, recorded_at=start + timedelta(seconds=5 * i))
        began = time.perf_counter()
        drivers.record_locations(brand=brand, driver_ref=ref, pings=[ping])
        elapsed += time.perf_counter() - began
    return pings / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stops", type=int, default=40)
    parser.add_argument("--pings", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        brand = Brand.objects.create(name="Bench ETA", slug="bench-eta")
        now = timezone.now().replace(microsecond=0)
        print(
            f"{args.stops} stops on the route, {args.pings} pings a round, one per call, {args.rounds} rounds; "
            f"{connection.vendor}, Redis: {settings.REDIS_URL or 'none'}, "
            f"debounce {settings.ETA_DEBOUNCE_SECONDS} s",
            flush=True,
        )
        rates = {way: [] for way in WAYS}
        for round_no in range(args.rounds):
            # The order turns each round, so that none always runs on the
            # fullest tables.
            names = list(WAYS)
            names = names[round_no % len(names) :] + names[: round_no % len(names)]
            for way in names:
                overrides = WAYS[way]
                ref = route_copy(brand, f"r{round_no}-{list(WAYS).index(way)}", args.stops, now)
                with override_settings(**overrides):
                    rates[way].append(record(brand, ref, args.pings, now - timedelta(minutes=30)))
                print(f"  round {round_no + 1}/{args.rounds}, {way}: {rates[way][-1]:,.0f} pings/s", flush=True)
        estimated = Shipment.objects.filter(computed_eta__isnull=False).count()
        off = statistics.median(rates["off"])
        print("\nmedians (pings/s): " + ", ".join(f"{w} {statistics.median(r):,.0f}" for w, r in rates.items()))
        ok = True
        for way in ("on", "on, every ping"):
            ratio = statistics.median(rates[way]) / off
            verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
            ok &= ratio >= TARGET_RATIO or way != "on"
            print(f"  {way} / off: {ratio:.2f} (target >= {TARGET_RATIO}) {verdict if way == 'on' else ''}".rstrip())
        print(f"parcels with a computed ETA at the end: {estimated}")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        if os.environ.get("REDIS_URL"):
            import redis

            redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
