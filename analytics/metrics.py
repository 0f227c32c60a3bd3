"""The figures of the brand's analytics, each defined beside the query that
counts it. They are counted per parcel here and summed into the daily
rollup (analytics.rollup); analytics.report turns sums into rates.

The day a parcel counts on: its delivery date (``delivered_at``) in the
brand's time zone; a parcel not delivered counts on the day it was created
(there, in the delivered figures' denominators, it counts for nothing).
Its driver: the driver of its latest route (by the route's date); "" when
it was on none. Its carrier: ``Shipment.carrier`` ("" when blank).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from notifications.models import Notification
from notifications.models import State as NotificationState
from shipments.alert_models import ActivityAction, Alert, AlertActivity
from shipments.models import Brand, Shipment, Stop, TrackingEvent
from shipments.statuses import Status

from . import buckets


def brand_zone(brand: Brand) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(brand.default_timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def day_of(*, status: str, delivered_at: dt.datetime | None, created_at: dt.datetime, zone) -> dt.date:
    """The day a parcel counts on (see the module's docstring)."""
    moment = delivered_at if status == Status.DELIVERED and delivered_at is not None else created_at
    return moment.astimezone(zone).date()


def day_bounds(day: dt.date, zone) -> tuple[dt.datetime, dt.datetime]:
    """The day's first instant and the next day's, in the zone (23 or 25
    hours long on the days the clocks change)."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def parcels_of_days(brand: Brand, first: dt.date, last: dt.date) -> QuerySet[Shipment]:
    """The parcels counted on the days first to last (included)."""
    zone = brand_zone(brand)
    start, end = day_bounds(first, zone)[0], day_bounds(last, zone)[1]
    delivered = Q(status=Status.DELIVERED, delivered_at__gte=start, delivered_at__lt=end)
    not_delivered = ~Q(status=Status.DELIVERED) & Q(created_at__gte=start, created_at__lt=end)
    return Shipment.objects.filter(brand=brand).filter(delivered | not_delivered).order_by()


def _events(status: Status):
    """The parcel's events of this status up to its delivery: what happened
    after it (a stray scan) says nothing of how it was delivered."""
    return TrackingEvent.objects.filter(
        shipment=OuterRef("pk"), status=status, occurred_at__lte=OuterRef("delivered_at")
    )


def parcel_rows(parcels: QuerySet[Shipment]) -> QuerySet:
    """One row per parcel with what its figures need, in one query."""
    latest_route = Stop.objects.filter(shipment=OuterRef("pk")).order_by("-route__date", "-pk")
    ofd_count = _events(Status.OUT_FOR_DELIVERY).order_by().values("shipment").annotate(n=Count("pk")).values("n")[:1]
    return parcels.annotate(
        driver=Coalesce(Subquery(latest_route.values("route__driver__ref")[:1]), Value("")),
        failed=Exists(_events(Status.FAILED_ATTEMPT)),
        ofd_count=Coalesce(Subquery(ofd_count, output_field=IntegerField()), Value(0)),
        last_ofd_at=Subquery(_events(Status.OUT_FOR_DELIVERY).order_by("-occurred_at").values("occurred_at")[:1]),
        views=Coalesce("analytics_facts__page_views", Value(0)),
        clicks=Coalesce("analytics_facts__support_clicks", Value(0)),
    ).values(
        "pk",
        "created_at",
        "carrier",
        "status",
        "delivered_at",
        "first_window_end",
        "driver",
        "failed",
        "ofd_count",
        "last_ofd_at",
        "views",
        "clicks",
        "rating__score",
    )


@dataclass
class Group:
    """The sums for one (driver, carrier) of one day: DailyRollup's columns."""

    parcels: int = 0
    delivered: int = 0
    with_window: int = 0
    on_time: int = 0
    first_attempt: int = 0
    rated: int = 0
    rating_sum: int = 0
    page_views: int = 0
    support_contacts: int = 0
    notifications_delivered: int = 0
    notifications_sent: int = 0
    notifications_failed: int = 0
    alerts: Counter = field(default_factory=Counter)
    # {bucket index (analytics.buckets): parcels}
    ofd_buckets: Counter = field(default_factory=Counter)


def count_parcel(group: Group, row: dict) -> None:
    """Add one parcel's figures to its group. The definitions:

    - parcels: every parcel counted on the day.
    - delivered: status delivered.
    - on time (numerator / ``with_window``): delivered, and had a first
      promised window (``first_window_end``, kept when a later window
      replaced it), and ``delivered_at`` is at or before its end.
    - first attempt: delivered with no failed-attempt event and at most one
      out-for-delivery event up to the delivery (a redelivery is a second).
    - out for delivery → delivered: from the latest out-for-delivery event
      up to the delivery to ``delivered_at``, in whole minutes, counted in
      its bucket (analytics.buckets says which and the percentiles' error);
      parcels delivered without one have no duration.
    - ratings: ``rated`` delivered parcels with a rating and the sum of
      their scores; unrated parcels stay in the response rate's
      denominator (delivered) and out of the average.
    - page views: full loads of its tracking page or widget frame.
    - support contacts: clicks on its page's support links, plus "contacted"
      entries staff logged on its alerts (added by ``count_extras``).
    """
    group.parcels += 1
    group.page_views += row["views"]
    group.support_contacts += row["clicks"]
    if row["status"] != Status.DELIVERED:
        return
    delivered_at = row["delivered_at"]
    group.delivered += 1
    if row["first_window_end"] is not None:
        group.with_window += 1
        group.on_time += delivered_at is not None and delivered_at <= row["first_window_end"]
    group.first_attempt += not row["failed"] and row["ofd_count"] <= 1
    if row["last_ofd_at"] is not None and delivered_at is not None:
        minutes = int((delivered_at - row["last_ofd_at"]).total_seconds() // 60)
        group.ofd_buckets[buckets.bucket_of(minutes)] += 1
    if row["rating__score"] is not None:
        group.rated += 1
        group.rating_sum += row["rating__score"]


def count_extras(groups: dict, group_of: dict[int, tuple], parcels: QuerySet[Shipment]) -> None:
    """What other tables say of the day's parcels, added to their groups:

    - alerts by kind: every alert opened on the parcel, open or resolved.
    - support contacts: AlertActivity "contacted" on the parcel's alerts.
    - notifications (every channel): delivered (a receipt came), sent (handed
      to the provider, no receipt yet or none to come: webhooks, email),
      failed. Queued, sending and skipped ones are not counted yet.
    """
    ids = parcels.values("pk")
    for row in Alert.objects.filter(shipment__in=ids).values("shipment_id", "kind").annotate(n=Count("pk")):
        if row["shipment_id"] in group_of:
            groups[group_of[row["shipment_id"]]].alerts[row["kind"]] += row["n"]
    contacted = AlertActivity.objects.filter(alert__shipment__in=ids, action=ActivityAction.CONTACTED)
    for row in contacted.values("alert__shipment_id").annotate(n=Count("pk")):
        if row["alert__shipment_id"] in group_of:
            groups[group_of[row["alert__shipment_id"]]].support_contacts += row["n"]
    states = {
        NotificationState.DELIVERED: "notifications_delivered",
        NotificationState.SENT: "notifications_sent",
        NotificationState.FAILED: "notifications_failed",
    }
    notifications = Notification.objects.filter(shipment__in=ids, state__in=list(states))
    for row in notifications.values("shipment_id", "state").annotate(n=Count("pk")):
        if row["shipment_id"] not in group_of:
            continue  # its day moved between the two reads; the next run counts it
        group = groups[group_of[row["shipment_id"]]]
        setattr(group, states[row["state"]], getattr(group, states[row["state"]]) + row["n"])


def count_days(brand: Brand, first: dt.date, last: dt.date) -> tuple[dict[tuple, Group], dict[int, dt.date]]:
    """The groups by (day, driver, carrier) of the days first to last, in
    one pass over their parcels; and each parcel's day."""
    parcels = parcels_of_days(brand, first, last)
    zone = brand_zone(brand)
    groups: dict[tuple, Group] = defaultdict(Group)
    group_of: dict[int, tuple] = {}
    for row in parcel_rows(parcels).iterator(chunk_size=5000):
        day = day_of(status=row["status"], delivered_at=row["delivered_at"], created_at=row["created_at"], zone=zone)
        key = (day, row["driver"], row["carrier"] or "")
        group_of[row["pk"]] = key
        count_parcel(groups[key], row)
    if group_of:
        count_extras(groups, group_of, parcels)
    return dict(groups), {pk: key[0] for pk, key in group_of.items()}
