"""The brand's analytics for a range of days, read from the daily rollup
(never from the shipments): the dashboard's and the API's one source.

Rates, from the rollup's sums (analytics.metrics defines each count):

- ``on_time_rate``: on time / delivered parcels that had a promised window.
- ``first_attempt_rate``: first attempt / delivered.
- ``ofd_to_delivered_minutes``: the median and p90 (nearest rank) of the
  minutes from the last out-for-delivery scan to delivery, from the summed
  fixed buckets: the middle of the bucket the exact figure lies in, off by
  at most half its width (2 minutes under an hour, 7 under four hours, 15
  under twelve; analytics.buckets).
- ``rating_average``: the scores' mean over rated parcels;
  ``rating_response_rate``: rated / delivered (unrated count as unrated).
- ``page_views_per_parcel``: page views / parcels.
- ``support_contacts_per_100_parcels``: 100 * (support-link clicks + contacts
  staff logged) / parcels.
- ``notification_delivery_rate``: (delivered + sent) / (delivered + sent +
  failed): the share of the messages that went out and did not fail
  (SMS receipts turn sent into delivered; email and webhooks have none).

Each is null when its denominator is 0.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Sum

from shipments.models import Brand

from . import buckets
from .models import ALERT_COLUMNS, ROLLUP_WATERMARK, DailyRollup, Watermark

# A longer range is refused (the API answers 422, the dashboard a form error).
MAX_RANGE_DAYS = 366

COUNTERS = (
    "parcels",
    "delivered",
    "with_window",
    "on_time",
    "first_attempt",
    "rated",
    "rating_sum",
    "page_views",
    "support_contacts",
    "notifications_delivered",
    "notifications_sent",
    "notifications_failed",
)
# Every column a range's figures sum: a year of a million parcels is
# ~12,000 rollup rows, summed in SQL in one GROUP BY per breakdown
# (bench/analytics.py).
SUMMED = (*COUNTERS, *ALERT_COLUMNS.values(), *buckets.COLUMNS)


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return round(scale * numerator / denominator, 4) if denominator else None


def figures(sums: dict) -> dict:
    """The figures of one range's (or one breakdown row's) column sums."""
    sums = {name: sums.get(name) or 0 for name in SUMMED}
    notified = sums["notifications_delivered"] + sums["notifications_sent"] + sums["notifications_failed"]
    minutes = [sums[column] for column in buckets.COLUMNS]
    alerts = {kind: sums[column] for kind, column in sorted(ALERT_COLUMNS.items()) if sums[column]}
    return {
        "parcels": sums["parcels"],
        "delivered": sums["delivered"],
        "on_time_rate": _ratio(sums["on_time"], sums["with_window"]),
        "first_attempt_rate": _ratio(sums["first_attempt"], sums["delivered"]),
        "ofd_to_delivered_minutes": {
            "median": buckets.percentile(minutes, 0.5),
            "p90": buckets.percentile(minutes, 0.9),
        },
        "rating_average": _ratio(sums["rating_sum"], sums["rated"]),
        "rating_response_rate": _ratio(sums["rated"], sums["delivered"]),
        "page_views_per_parcel": _ratio(sums["page_views"], sums["parcels"]),
        "support_contacts_per_100_parcels": _ratio(sums["support_contacts"], sums["parcels"], 100.0),
        "notification_delivery_rate": _ratio(sums["notifications_delivered"] + sums["notifications_sent"], notified),
        "alerts_by_kind": alerts,
    }


def brand_report(brand: Brand, start: dt.date, end: dt.date) -> dict:
    """Totals and the breakdowns by day, driver and carrier, start and end
    included: three GROUP BYs over the rollup, the totals from the days'."""
    rows = DailyRollup.objects.filter(brand=brand, day__gte=start, day__lte=end).order_by()
    sums = {name: Sum(name) for name in SUMMED}

    def grouped(key: str) -> list[dict]:
        return list(rows.values(key).annotate(**sums).order_by(key))

    by_day = grouped("day")
    total = {name: sum(row[name] or 0 for row in by_day) for name in SUMMED}

    def breakdown(key: str, groups: list[dict]) -> list[dict]:
        return [{key: row[key], **figures(row)} for row in groups]

    mark = Watermark.objects.filter(name=ROLLUP_WATERMARK).values_list("value", flat=True).first()
    return {
        "from": start,
        "to": end,
        "time_zone": brand.default_timezone,
        "updated_at": mark,
        **figures(total),
        "by_day": breakdown("day", by_day),
        "by_driver": breakdown("driver_ref", grouped("driver_ref")),
        "by_carrier": breakdown("carrier", grouped("carrier")),
    }


def check_range(start: dt.date, end: dt.date) -> str:
    """Why a range is refused, or "" when it is fine."""
    if start > end:
        return "from must be on or before to."
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return f"A range is at most {MAX_RANGE_DAYS} days."
    return ""
