"""Analytics for a brand with a million shipments, on PostgreSQL.

    .venv/bin/python bench/analytics.py [--shipments 1000000] [--rounds 5] [--duration 8]

Generates the brand in bulk SQL (shipments over a year, two or three
events each, routes of 50 drivers, ratings, alerts), builds the daily
rollup, then times, medians of --rounds, in the same run:

- baseline: a ``SELECT 1`` round trip;
- the report read from the rollup (what the dashboard and the API answer)
  for 30 days and for a whole year, and the API's answer for the year
  through Django's test client;
- the unaggregated query of the same year (on-time and first-attempt
  counts straight from the shipments and events), what the rollup spares;
- an incremental refresh after 1,000 parcels changed;

and the warm tracking page with page-view counting on and off (two
uvicorn processes in turn, wrk as in bench/tracking_page.py): the ratio.
Target: the dashboard's query under a second. Makes its own database
(dropped and created: --database-url).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup
from bench.tracking_page import wrk

PORT = 8441
DRIVERS = 50
DAYS = 365
END = dt.date(2026, 11, 30)

GENERATE = """
INSERT INTO shipments_shipment (
    brand_id, tracking_number, carrier, order_ref, recipient_name, recipient_phone, recipient_email,
    recipient_language, recipient_timezone, destination_line1, destination_line2, destination_city,
    destination_postcode, destination_country, promised_window_start, promised_window_end, first_window_end,
    status, substatus, status_changed_at, last_event_at, delivered_at, version, delivery_instructions,
    proof_received_by, proof_photo, proof_signature, public_token, created_at, updated_at)
SELECT %(brand)s, 'AN' || lpad(i::text, 8, '0'), (ARRAY['acme-fleet', 'swift', 'parcelco'])[1 + i %% 3], '', '', '', '',
    '', '', '', '', 'London', '', 'GB', day_start + interval '9 hours', day_start + interval '13 hours',
    day_start + interval '13 hours' - (CASE WHEN i %% 11 = 0 THEN interval '2 hours' ELSE interval '0' END),
    CASE WHEN i %% 20 = 0 THEN 'in_transit' ELSE 'delivered' END, '', day_start, day_start,
    CASE WHEN i %% 20 = 0 THEN NULL ELSE day_start + interval '8 hours' + (i %% 360) * interval '1 minute' END,
    3, '', '', '', '', md5(i::text) || md5((i + 7)::text), day_start - interval '1 day', day_start + interval '1 day'
FROM (SELECT i, (%(end)s::date - (i %% %(days)s))::timestamptz AS day_start
      FROM generate_series(1, %(count)s) AS i) AS g
"""
EVENTS = """
INSERT INTO shipments_trackingevent (shipment_id, occurred_at, received_at, status, substatus, carrier_code,
    description, location_city, source, external_id, is_correction, correction_reason)
SELECT s.id, s.status_changed_at + interval '7 hours', now(), 'out_for_delivery', '', '', '', '', 'api', 'ofd',
       false, ''
FROM shipments_shipment s WHERE s.brand_id = %(brand)s
UNION ALL
SELECT s.id, s.status_changed_at + interval '7 hours 30 minutes', now(), 'failed_attempt', '', '', '', '', 'api',
       'failed', false, ''
FROM shipments_shipment s WHERE s.brand_id = %(brand)s AND s.id %% 13 = 0
UNION ALL
SELECT s.id, s.delivered_at, now(), 'delivered', '', '', '', '', 'api', 'delivered', false, ''
FROM shipments_shipment s WHERE s.brand_id = %(brand)s AND s.delivered_at IS NOT NULL
"""
ROUTES = """
INSERT INTO shipments_route (driver_id, date)
SELECT d.id, %(end)s::date - n FROM shipments_driver d, generate_series(0, %(days)s) AS n WHERE d.brand_id = %(brand)s
"""
STOPS = """
INSERT INTO shipments_stop (route_id, shipment_id, sequence)
SELECT r.id, s.id, row_number() OVER (PARTITION BY r.id ORDER BY s.id)
FROM shipments_shipment s
JOIN shipments_driver d ON d.brand_id = s.brand_id AND d.ref = 'drv-' || (s.id %% %(drivers)s)
JOIN shipments_route r ON r.driver_id = d.id AND r.date = s.status_changed_at::date
WHERE s.brand_id = %(brand)s
"""
RATINGS = """
INSERT INTO shipments_deliveryrating (shipment_id, score, comment, created_at)
SELECT id, 1 + id %% 5, '', now() FROM shipments_shipment WHERE brand_id = %(brand)s AND id %% 5 = 0
  AND delivered_at IS NOT NULL
"""
ALERTS = """
INSERT INTO shipments_alert (shipment_id, kind, state, opened_at, detail, resolution, created_at, updated_at)
SELECT id, (ARRAY['late', 'stuck', 'missed_scan'])[1 + id %% 3], 'resolved', status_changed_at, '{}', 'rule',
       now(), now()
FROM shipments_shipment WHERE brand_id = %(brand)s AND id %% 29 = 0
"""
UNAGGREGATED = """
SELECT count(*) FILTER (WHERE s.first_window_end IS NOT NULL),
       count(*) FILTER (WHERE s.delivered_at <= s.first_window_end),
       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM shipments_trackingevent e WHERE e.shipment_id = s.id
                                          AND e.status = 'failed_attempt')),
       count(*)
FROM shipments_shipment s
WHERE s.brand_id = %(brand)s AND s.status = 'delivered' AND s.delivered_at >= %(start)s AND s.delivered_at < %(end)s
"""


def timed(function, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def generate(count: int):
    from django.db import connection

    from shipments.models import Brand, Driver

    brand = Brand.objects.create(name="Million Parcels", slug="million", default_timezone="Europe/London")
    Driver.objects.bulk_create(Driver(brand=brand, ref=f"drv-{n}") for n in range(DRIVERS))
    params = {"brand": brand.pk, "count": count, "days": DAYS, "end": END, "drivers": DRIVERS}
    with connection.cursor() as cursor:
        for name, sql in (
            ("shipments", GENERATE),
            ("events", EVENTS),
            ("routes", ROUTES),
            ("stops", STOPS),
            ("ratings", RATINGS),
            ("alerts", ALERTS),
        ):
            began = time.perf_counter()
            cursor.execute(sql, params)
            print(f"  {name}: {cursor.rowcount} rows in {time.perf_counter() - began:.1f} s", flush=True)
        cursor.execute("ANALYZE")
    return brand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_h7_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()

    _setup.recreate_database(args.database_url)
    _setup.configure(args.database_url, args.redis_url)
    _setup.migrate()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from analytics import backfill, metrics, report, rollup
    from analytics.models import ROLLUP_WATERMARK, DailyRollup, Watermark
    from analytics.report import brand_report
    from shipments import keys
    from shipments.models import Shipment

    print(f"Generating {args.shipments:,} shipments…", flush=True)
    brand = generate(args.shipments)
    began, started = time.perf_counter(), timezone.now()
    rows = backfill.backfill_brand(brand, END - dt.timedelta(days=DAYS), END)
    backfill.start_watermark(started)
    build = time.perf_counter() - began
    print(
        f"  rollup built (analytics_backfill): {rows:,} rows in {build:.1f} s"
        f" ({args.shipments / build:,.0f} parcels/s)",
        flush=True,
    )
    before = list(DailyRollup.objects.order_by("day", "driver_ref", "carrier").values_list(*report.SUMMED))
    began = time.perf_counter()
    backfill.backfill_brand(brand, END - dt.timedelta(days=30), END)
    again = time.perf_counter() - began
    after = list(DailyRollup.objects.order_by("day", "driver_ref", "carrier").values_list(*report.SUMMED))
    assert after == before, "a second backfill wrote other rows"
    print(f"  backfill of 31 days again: {again:.1f} s, the same rows", flush=True)
    # The generator stamps its alerts and ratings with now(): within the
    # refresh's overlap of the backfill's start, they would make the first
    # refresh recount the whole year. The backfill counted them; the beat's
    # mark starts past them.
    Watermark.objects.filter(name=ROLLUP_WATERMARK).update(value=timezone.now() + rollup.OVERLAP)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    year_start, month_start = END - dt.timedelta(days=DAYS), END - dt.timedelta(days=29)
    zone = metrics.brand_zone(brand)
    start_at, end_at = metrics.day_bounds(year_start, zone)[0], metrics.day_bounds(END, zone)[1]

    def select_one():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def unaggregated():
        with connection.cursor() as cursor:
            cursor.execute(UNAGGREGATED, {"brand": brand.pk, "start": start_at, "end": end_at})
            cursor.fetchone()

    client = Client(HTTP_HOST="localhost")
    key = keys.create_api_key(brand=brand, name="bench")[1]

    def api_year():
        response = client.get(f"/api/v1/analytics?from={year_start}&to={END}", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 200, response.content

    year = brand_report(brand, year_start, END)
    assert year["parcels"] == args.shipments, year["parcels"]
    touched = list(Shipment.objects.filter(brand=brand).values_list("pk", flat=True)[:1000])

    def refresh_after_changes():
        Shipment.objects.filter(pk__in=touched).update(updated_at=timezone.now())
        rollup.refresh()

    figures = {
        "SELECT 1": timed(select_one, args.rounds),
        "report, 30 days (rollup)": timed(lambda: brand_report(brand, month_start, END), args.rounds),
        "report, 366 days (rollup)": timed(lambda: brand_report(brand, year_start, END), args.rounds),
        "API, 366 days": timed(api_year, args.rounds),
        "unaggregated, 366 days": timed(unaggregated, max(1, args.rounds // 2)),
        "refresh after 1,000 changed": timed(refresh_after_changes, max(1, args.rounds // 2)),
    }
    base = figures["SELECT 1"]
    print()
    print(f"{args.shipments:,} shipments, {DailyRollup.objects.count():,} rollup rows, medians of {args.rounds}")
    print(f"{'query':<30}{'ms':>10}{'× SELECT 1':>12}")
    for name, seconds in figures.items():
        print(f"{name:<30}{seconds * 1000:>10.1f}{seconds / base:>12.0f}")
    print(
        f"year's on-time {year['on_time_rate']}, first attempt {year['first_attempt_rate']}, "
        f"OFD→delivered {year['ofd_to_delivered_minutes']}"
    )
    dashboard = figures["report, 366 days (rollup)"]
    print(
        f"dashboard (366 days) {dashboard * 1000:.0f} ms (target < 1,000 ms); "
        f"unaggregated / rollup = {figures['unaggregated, 366 days'] / dashboard:.1f}"
    )

    page_counting(args)


def page_counting(args) -> None:
    """The warm tracking page with counting on and off, alternating."""
    from django.utils import timezone

    from shipments import services
    from shipments.models import Brand
    from shipments.services import NewEvent

    brand = Brand.objects.get(slug="million")
    shipment, _ = services.create_shipment(
        brand=brand, tracking_number="PAGE1", recipient_name="Ada Lovelace", destination_city="London"
    )
    services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status="out_for_delivery", occurred_at=timezone.now(), external_id="ofd"),
    )
    url_path = f"/t/{shipment.public_token}/"
    results: dict[str, list[float]] = {"counting on": [], "counting off": []}
    for _round in range(max(1, args.rounds // 2)):
        for name, flag in (("counting on", "1"), ("counting off", "0")):
            os.environ["PAGE_VIEW_COUNTING"] = flag
            server = _setup.Server(PORT, args.database_url, args.redis_url)
            try:
                wrk(server.base + url_path, 2)
                results[name].append(wrk(server.base + url_path, args.duration)["rps"])
            finally:
                server.stop()
    on, off = (statistics.median(results[name]) for name in ("counting on", "counting off"))
    print(f"warm tracking page: counting on {on:.0f} req/s, off {off:.0f} req/s, on / off = {on / off:.2f}")


if __name__ == "__main__":
    main()
