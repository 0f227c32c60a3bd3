"""The brand's analytics for a range of days, read from the daily rollup
(never from the shipments): the dashboard's and the API's one source.

Rates, from the rollup's sums (analytics.metrics defines each count):

- ``on_time_rate``: on time / delivered parcels that had a promised window.
- ``first_attempt_rate``: first attempt / delivered.
- ``ofd_to_delivered_minutes``: the median and p90 (nearest rank) of the
  minutes from the last out-for-delivery scan to delivery.
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
from collections import Counter, defaultdict

from django.db.models import Sum

from shipments.models import Brand

from .models import ROLLUP_WATERMARK, DailyRollup, Watermark

# A longer range is refused (the API answers 422, the dashboard a form error).
MAX_RANGE_DAYS = 366

SUMMED = (
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


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return round(scale * numerator / denominator, 4) if denominator else None


def percentile(histogram: Counter, fraction: float) -> int | None:
    """The nearest-rank percentile of a {value: count} histogram."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, -(-int(fraction * total * 1000) // 1000))  # ceil, without float drift
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None


def figures(sums: dict, alerts: Counter, minutes: Counter) -> dict:
    notified = sums["notifications_delivered"] + sums["notifications_sent"] + sums["notifications_failed"]
    return {
        "parcels": sums["parcels"],
        "delivered": sums["delivered"],
        "on_time_rate": _ratio(sums["on_time"], sums["with_window"]),
        "first_attempt_rate": _ratio(sums["first_attempt"], sums["delivered"]),
        "ofd_to_delivered_minutes": {"median": percentile(minutes, 0.5), "p90": percentile(minutes, 0.9)},
        "rating_average": _ratio(sums["rating_sum"], sums["rated"]),
        "rating_response_rate": _ratio(sums["rated"], sums["delivered"]),
        "page_views_per_parcel": _ratio(sums["page_views"], sums["parcels"]),
        "support_contacts_per_100_parcels": _ratio(sums["support_contacts"], sums["parcels"], 100.0),
        "notification_delivery_rate": _ratio(sums["notifications_delivered"] + sums["notifications_sent"], notified),
        "alerts_by_kind": dict(sorted(alerts.items())),
    }


def _add(into: dict, counts: dict) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


def _empty() -> dict:
    return dict.fromkeys(SUMMED, 0)


def brand_report(brand: Brand, start: dt.date, end: dt.date) -> dict:
    """Totals and the breakdowns by day, driver and carrier, start and end
    included. Three GROUP BYs over the rollup and one pass over its
    histograms."""
    rows = DailyRollup.objects.filter(brand=brand, day__gte=start, day__lte=end)
    sums = {name: Sum(name) for name in SUMMED}
    by = {
        key: {tuple(row.pop(name) for name in key): row for row in rows.order_by().values(*key).annotate(**sums)}
        for key in (("day",), ("driver_ref",), ("carrier",))
    }
    alerts: dict[tuple, Counter] = defaultdict(Counter)
    minutes: dict[tuple, Counter] = defaultdict(Counter)
    for day, driver, carrier, row_alerts, row_minutes in rows.values_list(
        "day", "driver_ref", "carrier", "alerts", "ofd_minutes"
    ).iterator(chunk_size=5000):
        # The hot loop of a year's dashboard (bench/analytics.py): plain dict
        # sums, and the total from the days' sums afterwards.
        for group in (("day", day), ("driver_ref", driver), ("carrier", carrier)):
            if row_alerts:
                _add(alerts[group], row_alerts)
            if row_minutes:
                _add(minutes[group], row_minutes)
    for (key, _value), histogram in list(minutes.items()):
        if key == "day":
            _add(minutes["total",], histogram)
    for (key, _value), counted in list(alerts.items()):
        if key == "day":
            _add(alerts["total",], counted)
    for histogram in minutes.values():
        for value in [value for value in histogram if isinstance(value, str)]:
            histogram[int(value)] += histogram.pop(value)
    total = _empty()
    for row in by["day",].values():
        for name in SUMMED:
            total[name] += row[name] or 0

    def breakdown(key: str) -> list[dict]:
        return [
            {key: value, **figures(row, alerts[key, value], minutes[key, value])}
            for (value,), row in sorted(by[(key,)].items())
        ]

    mark = Watermark.objects.filter(name=ROLLUP_WATERMARK).values_list("value", flat=True).first()
    return {
        "from": start,
        "to": end,
        "time_zone": brand.default_timezone,
        "updated_at": mark,
        **figures(total, alerts["total",], minutes["total",]),
        "by_day": breakdown("day"),
        "by_driver": breakdown("driver_ref"),
        "by_carrier": breakdown("carrier"),
    }


def check_range(start: dt.date, end: dt.date) -> str:
    """Why a range is refused, or "" when it is fine."""
    if start > end:
        return "from must be on or before to."
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return f"A range is at most {MAX_RANGE_DAYS} days."
    return ""
