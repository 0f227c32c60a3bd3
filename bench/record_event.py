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

from shipments import services, signals  # noqa: E402
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


def run_record_event_alone(shipment_ids, events, clock):
    """record_event with nothing listening after commit: the lock, the
    transition and the outbox row alone."""
    receivers = signals.shipments_changed.receivers
    signals.shipments_changed.receivers = []
    signals.shipments_changed.sender_receivers_cache.clear()
    try:
        return run_record_event(shipment_ids, events, clock)
    finally:
        signals.shipments_changed.receivers = receivers
        signals.shipments_changed.sender_receivers_cache.clear()


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

        variants = {
            "plain TrackingEvent insert": lambda: run_plain_insert(plain_ids, args.events, clock),
            "record_event, nothing listening": lambda: run_record_event_alone(record_ids, args.events, clock),
            "record_event, as wired": lambda: run_record_event(record_ids, args.events, clock),
        }
        rates = {name: [] for name in variants}
        for round_no in range(1, args.rounds + 1):
            for name, run in variants.items():
                rates[name].append(run())
            print(
                f"round {round_no}/{args.rounds}: "
                + ", ".join(f"{name} {values[-1]:,.0f}/s" for name, values in rates.items()),
                flush=True,
            )
        medians = {name: statistics.median(values) for name, values in rates.items()}
        plain = medians["plain TrackingEvent insert"]
        print(f"\nmedians of {args.rounds} rounds of {args.events} calls, each its own transaction:")
        for name, rate in medians.items():
            print(f"  {name:<33} {rate:>7,.0f} events/s   ratio to plain {rate / plain:.2f}")
        print("target: record_event at least 0.25 of the plain insert (the lock, transition and outbox row)")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


if __name__ == "__main__":
    main()
