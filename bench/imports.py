"""Rows/s of the CSV import (shipments.imports) against bulk_create of the
same rows, in one run.

    .venv/bin/python bench/imports.py [--rows 100000] [--rounds 2] [--library-rows 10000]

A CSV file of ``--rows`` generated shipments (every standard column filled,
a promised window on each) is written to a temporary file. Each round, in
alternation so that the machine's noise hits both:

- "import": ``imports.import_csv`` of the file into a fresh brand, from the
  file on disk: reading, checking every row by the API's rules, batched
  inserts, the report;
- "bulk_create": ``Shipment.objects.bulk_create`` of the same rows into
  another fresh brand, from Shipment objects built beforehand (the time to
  parse the file is not counted: the baseline is the database write alone),
  batch_size 2,000, one transaction per batch as the import does.

Then, when django-import-export is installed (it is not a requirement), its
``ModelResource.import_data`` of the first ``--library-rows`` rows, with
``use_bulk``, ``skip_unchanged`` and the tracking number as the import id,
once as a dry run and once for real, for the comparison that decided the
house's own code (bench/RESULTS.md).

It makes and drops its own database (default
postgres://postgres@127.0.0.1:5432/portal_imports_bench; DATABASE_URL
overrides); Redis is not used.
"""

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_imports_bench")
os.environ["REDIS_URL"] = ""
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench._setup import recreate_database  # noqa: E402

HEADER = [
    "tracking_number",
    "order_ref",
    "carrier",
    "recipient_name",
    "recipient_phone",
    "recipient_email",
    "recipient_language",
    "line1",
    "line2",
    "city",
    "postcode",
    "country",
    "window_start",
    "window_end",
]
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def row(n: int) -> list[str]:
    start = START + timedelta(minutes=n % 600)
    return [
        f"IMP{n:08d}",
        f"ORD-{n // 3:07d}",
        "acme-fleet",
        f"Recipient {n}",
        f"+4477009{n % 100000:05d}",
        f"r{n}@example.com",
        "en",
        f"{n % 300} Example Street",
        "Flat 2" if n % 4 == 0 else "",
        "London",
        "SW1A 2AA",
        "GB",
        start.isoformat(),
        (start + timedelta(hours=4)).isoformat(),
    ]


def write_file(path: str, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            writer.writerow(row(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--library-rows", type=int, default=10_000)
    args = parser.parse_args()

    recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from shipments import imports
    from shipments.models import Brand, Shipment

    call_command("migrate", verbosity=0, interactive=False)
    assert connection.vendor == "postgresql", "the figures are for PostgreSQL"

    handle, path = tempfile.mkstemp(suffix=".csv")
    os.close(handle)
    write_file(path, args.rows)
    size = os.path.getsize(path)
    print(f"{args.rows:,} rows, {size / 1e6:.1f} MB, PostgreSQL {connection.pg_version}")

    def as_objects(brand: Brand) -> list[Shipment]:
        with open(path, "rb") as source:
            targets, _ = imports.columns_for(imports.check_file(source))
            found = []
            for line, cells in imports.records(source):
                if line == 1:
                    continue
                tracking_number, fields = imports.row_fields(brand, targets, cells)
                found.append(Shipment(brand=brand, tracking_number=tracking_number, **fields))
        return found

    rates: dict[str, list[float]] = {"import": [], "bulk_create": []}
    for round_number in range(args.rounds):
        brand = Brand.objects.create(name=f"Import {round_number}", slug=f"import-{round_number}")
        began = time.perf_counter()
        with open(path, "rb") as source:
            report = imports.import_csv(brand=brand, source=source)
        took = time.perf_counter() - began
        assert report.created == args.rows and not report.refused_count, report
        rates["import"].append(args.rows / took)

        baseline = Brand.objects.create(name=f"Baseline {round_number}", slug=f"baseline-{round_number}")
        objects = as_objects(baseline)
        began = time.perf_counter()
        for start in range(0, len(objects), imports.BATCH):
            with transaction.atomic():
                Shipment.objects.bulk_create(objects[start : start + imports.BATCH])
        took = time.perf_counter() - began
        rates["bulk_create"].append(args.rows / took)
        print(
            f"round {round_number + 1}: import {rates['import'][-1]:,.0f} rows/s,"
            f" bulk_create {rates['bulk_create'][-1]:,.0f} rows/s"
        )

    imported, baseline_rate = statistics.median(rates["import"]), statistics.median(rates["bulk_create"])
    print(f"median: import {imported:,.0f} rows/s, bulk_create {baseline_rate:,.0f} rows/s")
    print(f"ratio import / bulk_create: {imported / baseline_rate:.2f} (target >= 0.25, and >= 5,000 rows/s)")
    print(f"{args.rows:,} rows imported in {args.rows / imported:.1f} s")

    # Dry run of the whole file: the same reading and checks, no writes.
    brand = Brand.objects.create(name="Dry run", slug="dry-run")
    began = time.perf_counter()
    with open(path, "rb") as source:
        report = imports.import_csv(brand=brand, source=source, dry_run=True)
    took = time.perf_counter() - began
    assert not Shipment.objects.filter(brand=brand).exists()
    print(f"dry run: {args.rows / took:,.0f} rows/s")

    library(path, args.library_rows, Brand, Shipment)
    os.unlink(path)


def library(path: str, rows: int, Brand, Shipment) -> None:
    try:
        import tablib
        from import_export import resources
    except ImportError:
        print("django-import-export is not installed: no library comparison")
        return

    brand = Brand.objects.create(name="Library", slug="library")

    class ShipmentResource(resources.ModelResource):
        class Meta:
            model = Shipment
            import_id_fields = ["brand", "tracking_number"]
            fields = ["brand", "tracking_number", "order_ref", "carrier", "recipient_name", "recipient_phone"]
            use_bulk = True
            batch_size = 2000
            skip_unchanged = True

    with open(path, encoding="utf-8") as source:
        lines = [next(source) for _ in range(rows + 1)]
    dataset = tablib.Dataset().load("".join(lines), format="csv")
    dataset.append_col([brand.pk] * len(dataset), header="brand")
    for dry_run in (True, False):
        began = time.perf_counter()
        result = ShipmentResource().import_data(dataset, dry_run=dry_run)
        took = time.perf_counter() - began
        if result.has_errors() or result.has_validation_errors():
            first = (result.row_errors() or [(None, [None])])[0][1][0]
            print("django-import-export refused rows:", first and first.error, result.invalid_rows[:1])
            return
        label = "dry run" if dry_run else "import"
        print(f"django-import-export {label}: {rows / took:,.0f} rows/s ({rows:,} rows, six columns)")


if __name__ == "__main__":
    main()
