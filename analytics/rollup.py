"""The daily rollup, kept up to date incrementally: every minute (beat),
the days of the parcels that anything touched since the last run are
counted again from scratch, so a late event, a rating, an alert or a
receipt lands on the right day however late it comes, and a run repeated
changes nothing.

What "touched" reads (each since the watermark, less an overlap for
transactions that committed after the last run started):
``Shipment.updated_at`` (every event, edit and status change moves it),
``Alert.updated_at``, ``AlertActivity.at``, ``DeliveryRating.created_at``,
``Notification`` created/sent/delivered/failed times and
``ParcelFacts.counts_changed_at`` (the folded page views). A parcel's
days to recount: the day it counts on now and the day it was counted on
last (``ParcelFacts.counted_day``), so one whose day moved leaves its old
day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.models import Notification
from shipments.alert_models import Alert, AlertActivity
from shipments.models import Brand, DeliveryRating, Shipment

from . import buckets, metrics
from .models import ALERT_COLUMNS, DailyRollup, ParcelFacts, Watermark
from .models import ROLLUP_WATERMARK as WATERMARK

# Longer than any transaction that writes what the rollup reads.
OVERLAP = dt.timedelta(minutes=2)


def touched_shipments(since: dt.datetime) -> set[int]:
    ids = set(Shipment.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
    ids |= set(Alert.objects.filter(updated_at__gte=since).values_list("shipment_id", flat=True))
    ids |= set(AlertActivity.objects.filter(at__gte=since).values_list("alert__shipment_id", flat=True))
    ids |= set(DeliveryRating.objects.filter(created_at__gte=since).values_list("shipment_id", flat=True))
    changed = Q(created_at__gte=since) | Q(sent_at__gte=since) | Q(delivered_at__gte=since) | Q(failed_at__gte=since)
    ids |= set(Notification.objects.filter(changed).values_list("shipment_id", flat=True))
    ids |= set(ParcelFacts.objects.filter(counts_changed_at__gte=since).values_list("shipment_id", flat=True))
    return ids


def days_to_count(shipment_ids: set[int]) -> dict[int, set[dt.date]]:
    """By brand id: the days these parcels count on now and were counted on."""
    days: dict[int, set[dt.date]] = defaultdict(set)
    zones: dict[int, object] = {}
    rows = Shipment.objects.filter(pk__in=shipment_ids).values(
        "brand_id", "brand__default_timezone", "status", "delivered_at", "created_at", "analytics_facts__counted_day"
    )
    for row in rows.iterator(chunk_size=5000):
        zone = zones.get(row["brand_id"])
        if zone is None:
            zone = zones[row["brand_id"]] = metrics.brand_zone(Brand(default_timezone=row["brand__default_timezone"]))
        days[row["brand_id"]].add(
            metrics.day_of(
                status=row["status"], delivered_at=row["delivered_at"], created_at=row["created_at"], zone=zone
            )
        )
        if row["analytics_facts__counted_day"] is not None:
            days[row["brand_id"]].add(row["analytics_facts__counted_day"])
    return days


def runs_of(days) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) runs: each run is one query."""
    runs: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(first, last) for first, last in runs]


def row_of(brand: Brand, day: dt.date, driver: str, carrier: str, group: metrics.Group) -> DailyRollup:
    """A group's sums as its rollup row: the counters as they are, the
    alerts and the durations spread over their columns."""
    counters = {name: value for name, value in vars(group).items() if name not in ("alerts", "ofd_buckets")}
    alerts = {ALERT_COLUMNS[kind]: n for kind, n in group.alerts.items() if kind in ALERT_COLUMNS}
    minutes = {buckets.COLUMNS[index]: n for index, n in group.ofd_buckets.items()}
    return DailyRollup(brand=brand, day=day, driver_ref=driver, carrier=carrier, **counters, **alerts, **minutes)


@transaction.atomic
def count_days(brand: Brand, days) -> int:
    """Replace the brand's rollup rows of these days by a fresh count;
    returns how many rows it wrote."""
    written = 0
    for first, last in runs_of(days):
        groups, day_of_parcel = metrics.count_days(brand, first, last)
        DailyRollup.objects.filter(brand=brand, day__gte=first, day__lte=last).delete()
        DailyRollup.objects.bulk_create(
            (row_of(brand, day, driver, carrier, group) for (day, driver, carrier), group in groups.items()),
            batch_size=2000,
        )
        written += len(groups)
        ParcelFacts.objects.bulk_create(
            [ParcelFacts(shipment_id=pk, counted_day=day) for pk, day in day_of_parcel.items()],
            update_conflicts=True,
            unique_fields=["shipment"],
            update_fields=["counted_day"],
            batch_size=2000,
        )
    return written


def refresh(now: dt.datetime | None = None) -> int:
    """Count again the days touched since the last run; returns the rollup
    rows written. Runs one at a time: the watermark's row lock serialises
    two beats that overlap."""
    now = now or timezone.now()
    with transaction.atomic():
        Watermark.objects.get_or_create(name=WATERMARK, defaults={"value": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)})
        mark = Watermark.objects.select_for_update().get(name=WATERMARK)
        touched = touched_shipments(mark.value - OVERLAP)
        written = 0
        brands = Brand.objects.in_bulk(list(days := days_to_count(touched)))
        for brand_id, brand_days in days.items():
            written += count_days(brands[brand_id], brand_days)
        mark.value = now
        mark.save(update_fields=["value"])
    return written
