"""The first rollup of a portal with history: every day of a brand's
parcels counted from scratch, a few days per transaction, so that the
dashboard has its past; the beat (analytics.rollup.refresh) keeps it
current after that.

Counting a day replaces its rows (analytics.rollup.count_days), so a
backfill run again, or over days the beat already keeps, writes the same
rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Min
from django.utils import timezone

from shipments.models import Brand, Shipment

from . import metrics, rollup
from .models import ROLLUP_WATERMARK, Watermark

# Days counted per transaction: a week of a busy brand (a million parcels
# a year) is ~20,000 parcels held in memory at once.
CHUNK_DAYS = 7


@dataclass
class Progress:
    brand: Brand
    days_done: int
    days: int
    rows: int


def brand_days(brand: Brand) -> tuple[dt.date, dt.date] | None:
    """The brand's first day with a parcel and today, in its time zone;
    None when it has no parcel."""
    zone = metrics.brand_zone(brand)
    first = Shipment.objects.filter(brand=brand).aggregate(created=Min("created_at"), delivered=Min("delivered_at"))
    moments = [moment for moment in first.values() if moment is not None]
    if not moments:
        return None
    return min(moments).astimezone(zone).date(), timezone.now().astimezone(zone).date()


def backfill_brand(
    brand: Brand,
    first: dt.date,
    last: dt.date,
    *,
    chunk_days: int = CHUNK_DAYS,
    on_progress: Callable[[Progress], None] | None = None,
) -> int:
    """Count the days first to last (included) again; returns the rollup
    rows written."""
    days = (last - first).days + 1
    rows = 0
    for offset in range(0, days, chunk_days):
        chunk = [first + dt.timedelta(days=n) for n in range(offset, min(offset + chunk_days, days))]
        rows += rollup.count_days(brand, chunk)
        if on_progress:
            on_progress(Progress(brand=brand, days_done=offset + len(chunk), days=days, rows=rows))
    return rows


def start_watermark(started: dt.datetime) -> None:
    """Let the beat take over from when the backfill started: what changed
    while it ran is after this mark, and the beat counts it. A mark the beat
    already keeps is left as it is."""
    Watermark.objects.get_or_create(name=ROLLUP_WATERMARK, defaults={"value": started})
