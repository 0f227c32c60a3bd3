"""Events/s through POST /api/v1/events against bulk_create of the same rows.

    .venv/bin/python bench/ingest.py [--rounds 10] [--shipments 1000] [--skip-wired]

The view is driven in-process through Django's test Client with a JSON body
prepared beforehand, so the figures include authentication, the rate limit,
parsing and validation, the batch path (one transaction: lock the batch's
shipments, dedupe, insert events, status changes, update shipments) and the
after-commit announcements. Every event moves its shipment on (in_transit ↔
out_for_delivery), the dearest case: each writes a StatusChange.

The baseline is TrackingEvent.objects.bulk_create of the same rows, one
transaction per batch. Batches of 100 and 1,000, rounds alternating between
the API and the baseline so that the machine's noise hits both; events/s,
p50 and p99 of the per-batch time, and the ratio to the baseline.

Two API variants in the same run: "as wired" with the receivers of
shipments_changed that the project connects (live push, notification
planning), and "ingest only" with them disconnected, which is the API's own
cost. It makes and drops its own database (test_<name> of DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/portal_api_bench). With REDIS_URL
set, the rate limit and the receivers use that Redis (and the queued
notification tasks are deleted at the end); default redis://127.0.0.1:6379/3.
"""

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_api_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from shipments import keys, services, signals  # noqa: E402
from shipments.models import Brand, EventSource, Shipment, TrackingEvent  # noqa: E402

STATUSES = ["in_transit", "out_for_delivery"]
SIZES = (100, 1000)


class Feed:
    """Batches of one scan per parcel, each later than the last, so that
    every event changes its shipment's status."""

    def __init__(self, tracking_numbers, ids):
        self.tracking_numbers = tracking_numbers
        self.ids = ids
        self.clock = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in itertools.count())
        self.step = itertools.count()

    def next_batch(self, size):
        step = next(self.step)
        at = next(self.clock)
        status = STATUSES[step % 2]
        return [
            (self.ids[n], self.tracking_numbers[n], status, at, f"s{step}-{n}") for n in range(min(size, len(self.ids)))
        ]


def make_shipments(brand, count, prefix):
    numbers = [f"{prefix}{n:06d}" for n in range(count)]
    for number in numbers:
        services.create_shipment(brand=brand, tracking_number=number, destination_city="London")
    ids = dict(Shipment.objects.filter(brand=brand, tracking_number__in=numbers).values_list("tracking_number", "pk"))
    return numbers, [ids[n] for n in numbers]


def api_batch(client, headers, rows):
    body = json.dumps(
        {
            "events": [
                {
                    "tracking_number": number,
                    "status": status,
                    "occurred_at": at.isoformat(),
                    "external_id": external_id,
                    "carrier_code": "SCAN",
                    "description": "Scanned at the depot",
                }
                for _, number, status, at, external_id in rows
            ]
        }
    )
    start = time.perf_counter()
    response = client.post("/api/v1/events", body, content_type="application/json", **headers)
    elapsed = time.perf_counter() - start
    result = response.json()
    if response.status_code != 200 or result["accepted"] != len(rows):
        sys.exit(f"API batch failed: {response.status_code} {str(result)[:300]}")
    return elapsed


def bulk_batch(rows):
    objs = [
        TrackingEvent(
            shipment_id=shipment_id,
            status=status,
            occurred_at=at,
            source=EventSource.API,
            external_id=external_id,
            carrier_code="SCAN",
            description="Scanned at the depot",
        )
        for shipment_id, _, status, at, external_id in rows
    ]
    start = time.perf_counter()
    with transaction.atomic():
        TrackingEvent.objects.bulk_create(objs)
    return time.perf_counter() - start


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def disconnect_receivers():
    receivers = list(signals.shipments_changed.receivers)
    signals.shipments_changed.receivers = []
    signals.shipments_changed.sender_receivers_cache.clear()
    return receivers


def restore_receivers(receivers):
    signals.shipments_changed.receivers = receivers
    signals.shipments_changed.sender_receivers_cache.clear()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="batches per size and variant")
    parser.add_argument("--shipments", type=int, default=1000, help="parcels per variant (at least the batch size)")
    parser.add_argument(
        "--skip-wired", action="store_true", help="leave out the 'as wired' variant (its after-commit work is slow)"
    )
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit("This benchmark is for PostgreSQL: set DATABASE_URL=postgres://…")
    settings.DEBUG = False  # no query log
    settings.API_RATE_LIMIT = "1000000/60"
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        brand = Brand.objects.create(name="Bench", slug="bench")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {keys.create_api_key(brand=brand)[1]}"}
        client = Client(HTTP_HOST="127.0.0.1")
        feeds = {
            "API, as wired": Feed(*make_shipments(brand, args.shipments, "W")),
            "API, ingest only": Feed(*make_shipments(brand, args.shipments, "I")),
            "bulk_create": Feed(*make_shipments(brand, args.shipments, "B")),
        }
        if args.skip_wired:
            del feeds["API, as wired"]
        print(
            f"PostgreSQL {connection.pg_version // 10000}, receivers of shipments_changed: "
            f"{len(signals.shipments_changed.receivers)}, Redis: {settings.REDIS_URL or 'none (in-process)'}"
        )

        def run(variant, size):
            rows = feeds[variant].next_batch(size)
            if variant == "bulk_create":
                return bulk_batch(rows)
            if variant == "API, ingest only":
                receivers = disconnect_receivers()
                try:
                    return api_batch(client, headers, rows)
                finally:
                    restore_receivers(receivers)
            return api_batch(client, headers, rows)

        for size in SIZES:
            for variant in feeds:  # warm-up, not counted
                run(variant, size)
            times = {variant: [] for variant in feeds}
            for _ in range(args.rounds):
                for variant in feeds:
                    times[variant].append(run(variant, size))
            base = size * len(times["bulk_create"]) / sum(times["bulk_create"])
            print(f"\nbatches of {size:,} ({args.rounds} per variant)")
            print(f"  {'variant':<18} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
            for variant, values in times.items():
                rate = size * len(values) / sum(values)
                print(
                    f"  {variant:<18} {rate:>10,.0f} {statistics.median(values) * 1000:>8.1f} "
                    f"{percentile(values, 0.99) * 1000:>8.1f} {rate / base:>7.2f}"
                )
        print("\nratio: events/s over bulk_create's in the same run; target ≥ 5,000 events/s for batches of 1,000")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        if settings.REDIS_URL:
            import redis

            # The notification tasks queued by the "as wired" variant have no
            # worker here; leave nothing behind in the queue.
            redis.Redis.from_url(settings.REDIS_URL).delete("celery")


if __name__ == "__main__":
    main()
