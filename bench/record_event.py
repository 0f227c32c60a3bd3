"""record_event against a plain insert of the same rows, on PostgreSQL.

    .venv/bin/python bench/record_event.py [--events 2000] [--rounds 5]

Each call is its own transaction, as an API call would be. Every
record_event call here changes the status (the dearest case: lock, event,
shipment update and a StatusChange row); the baseline is
TrackingEvent.objects.create of the same rows, each in its own transaction.
Rounds alternate between the two so that the machine's noise hits both; the
medians and their ratio are printed. It makes and drops its own database
(test_<name> of DATABASE_URL, default postgres://postgres@127.0.0.1:5432/portal_bench).

After commit, record_event announces the change as it does in production:
with REDIS_URL set (default: Redis database 14 on loopback, emptied at the
end) that is a task enqueued for the notification workers and a message
published for open pages. Without Redis, Celery would run the whole sending
pipeline eagerly inside each call, which is the notification benchmark's
business (bench/notify_latency.py), not this one's.
"""

import argparse
import itertools
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from shipments import services  # noqa: E402
from shipments.models import Brand, EventSource, TrackingEvent  # noqa: E402
from shipments.services import NewEvent  # noqa: E402

STATUS_CYCLE = ["in_transit", "out_for_delivery", "failed_attempt"]


def make_shipments(brand, count, prefix):
    return [services.create_shipment(brand=brand, tracking_number=f"{prefix}{n:06d}")[0].pk for n in range(count)]


def run_record_event(shipment_ids, events, clock):
    start = time.perf_counter()
    for n in range(events):
        services.record_event(
            shipment_id=shipment_ids[n % len(shipment_ids)],
            event=NewEvent(
                status=STATUS_CYCLE[(n // len(shipment_ids)) % len(STATUS_CYCLE)],
                occurred_at=next(clock),
                source=EventSource.API,
                external_id=f"r{n}-{time.monotonic_ns()}",
                carrier_code="SCAN",
                description="Scanned at the depot",
            ),
        )
    return events / (time.perf_counter() - start)


def run_plain_insert(shipment_ids, events, clock):
    start = time.perf_counter()
    for n in range(events):
        with transaction.atomic():
            TrackingEvent.objects.create(
                shipment_id=shipment_ids[n % len(shipment_ids)],
                status=STATUS_CYCLE[(n // len(shipment_ids)) % len(STATUS_CYCLE)],
                occurred_at=next(clock),
                source=EventSource.API,
                external_id=f"p{n}-{time.monotonic_ns()}",
                carrier_code="SCAN",
                description="Scanned at the depot",
            )
    return events / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="calls per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shipments", type=int, default=200)
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("This benchmark is for PostgreSQL: set DATABASE_URL=postgres://…")
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        brand = Brand.objects.create(name="Bench", slug="bench")
        clock = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in itertools.count())
        record_ids = make_shipments(brand, args.shipments, "R")
        plain_ids = make_shipments(brand, args.shipments, "P")
        # One warm-up of each, not counted.
        run_record_event(record_ids, 200, clock)
        run_plain_insert(plain_ids, 200, clock)

        rates = {"record_event": [], "plain insert": []}
        for round_no in range(1, args.rounds + 1):
            rates["record_event"].append(run_record_event(record_ids, args.events, clock))
            rates["plain insert"].append(run_plain_insert(plain_ids, args.events, clock))
            print(
                f"round {round_no}/{args.rounds}: record_event {rates['record_event'][-1]:,.0f}/s, "
                f"plain insert {rates['plain insert'][-1]:,.0f}/s",
                flush=True,
            )
        record = statistics.median(rates["record_event"])
        plain = statistics.median(rates["plain insert"])
        print(f"\nmedian of {args.rounds} rounds of {args.events} calls, each its own transaction:")
        print(f"  plain TrackingEvent insert: {plain:,.0f} events/s")
        print(f"  record_event:               {record:,.0f} events/s")
        print(f"  ratio record_event / plain: {record / plain:.2f} (target at least 0.25)")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


if __name__ == "__main__":
    main()
