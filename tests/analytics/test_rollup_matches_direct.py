"""The rollup's answer equals the answer of queries straight over the
shipments, their events, alerts, ratings and messages, on a few days of
varied parcels: the definitions written once more, plainly, per parcel."""

import datetime as dt
import random
import zoneinfo
from collections import Counter

import pytest
from django.db.models import Avg, Count, F, Q, Sum
from django.utils import timezone

from analytics import buckets, rollup
from analytics.models import ParcelFacts
from analytics.report import brand_report
from notifications.models import Notification
from notifications.models import State as NotificationState
from shipments.alert_models import Alert
from shipments.models import DeliveryRating, Shipment, StatusChange

from .conftest import D, at, record

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
DAYS = [D - dt.timedelta(days=n) for n in range(3, -1, -1)]
CARRIERS = ["acme-fleet", "swift", ""]


@pytest.fixture
def varied_days(brand, make_shipment):
    """Forty parcels over four days: windows or none, failed attempts,
    redeliveries, parcels not delivered, ratings, alerts, messages, views."""
    brand.default_timezone = "Europe/Paris"
    brand.save()
    draw = random.Random(16)
    Alert.objects.all().delete()
    for n in range(40):
        day = draw.choice(DAYS)
        window = draw.random() < 0.7
        fields = {"carrier": draw.choice(CARRIERS)}
        if window:
            fields |= {
                "promised_window_start": at(8, day=day),
                "promised_window_end": at(draw.choice([11, 13]), day=day),
            }
        parcel = make_shipment(f"V{n:03d}", **fields)
        Shipment.objects.filter(pk=parcel.pk).update(created_at=at(6, day=day))
        ofd_at = at(draw.randint(7, 12), draw.randint(0, 59), day=day)
        record(parcel, "out_for_delivery", ofd_at)
        if draw.random() < 0.15:
            continue  # out for delivery still: counts on the day it was created
        if draw.random() < 0.25:
            record(parcel, "failed_attempt", ofd_at + dt.timedelta(minutes=40))
            ofd_at += dt.timedelta(hours=2)
            record(parcel, "out_for_delivery", ofd_at, external_id="ofd-2")
        # Minutes out for delivery from 3 to 600, across many buckets.
        record(parcel, "delivered", ofd_at + dt.timedelta(minutes=draw.randint(3, 600)))
        if draw.random() < 0.4:
            DeliveryRating.objects.create(shipment=parcel, score=draw.randint(1, 5))
        if draw.random() < 0.3:
            Alert.objects.create(shipment=parcel, kind=draw.choice(["late", "stuck"]), opened_at=ofd_at)
        ParcelFacts.objects.update_or_create(
            shipment=parcel, defaults={"page_views": draw.randint(0, 9), "counts_changed_at": timezone.now()}
        )
    Notification.objects.all().delete()
    states = [NotificationState.DELIVERED, NotificationState.SENT, NotificationState.FAILED, NotificationState.QUEUED]
    for change in StatusChange.objects.filter(shipment__brand=brand)[:30]:
        Notification.objects.create(
            status_change=change,
            shipment=change.shipment,
            channel="sms",
            recipient="+447700900123",
            state=draw.choice(states),
        )
    rollup.refresh()


def nearest_rank(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, -(-int(fraction * len(ordered) * 1000) // 1000)) - 1]


def direct(brand, first: dt.date, last: dt.date, **only) -> dict:
    """The figures of the days first to last, straight from the tables."""
    start = dt.datetime.combine(first, dt.time.min, tzinfo=PARIS)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=PARIS)
    mine = Shipment.objects.filter(brand=brand, **only)
    delivered = mine.filter(status="delivered", delivered_at__gte=start, delivered_at__lt=end)
    waiting = mine.exclude(status="delivered").filter(created_at__gte=start, created_at__lt=end)
    parcels = mine.filter(Q(pk__in=delivered) | Q(pk__in=waiting))
    first_attempt, minutes = 0, []
    for parcel in delivered:
        before = parcel.events.filter(occurred_at__lte=parcel.delivered_at)
        ofds = before.filter(status="out_for_delivery").order_by("occurred_at")
        first_attempt += not before.filter(status="failed_attempt").exists() and ofds.count() <= 1
        if ofds:
            minutes.append(int((parcel.delivered_at - ofds.last().occurred_at).total_seconds() // 60))
    with_window = delivered.filter(first_window_end__isnull=False)
    rated = delivered.filter(rating__isnull=False)
    states = Counter(Notification.objects.filter(shipment__in=parcels).values_list("state", flat=True))
    went_out = states[NotificationState.DELIVERED] + states[NotificationState.SENT]
    notified = went_out + states[NotificationState.FAILED]
    count, n_delivered = parcels.count(), delivered.count()
    views = ParcelFacts.objects.filter(shipment__in=parcels).aggregate(n=Sum("page_views"))["n"] or 0

    def ratio(a, b):
        return round(a / b, 4) if b else None

    average = rated.aggregate(a=Avg("rating__score"))["a"]
    return {
        "parcels": count,
        "delivered": n_delivered,
        "on_time_rate": ratio(with_window.filter(delivered_at__lte=F("first_window_end")).count(), with_window.count()),
        "first_attempt_rate": ratio(first_attempt, n_delivered),
        "exact_minutes": {"median": nearest_rank(minutes, 0.5), "p90": nearest_rank(minutes, 0.9)},
        "rating_average": None if average is None else round(average, 4),
        "rating_response_rate": ratio(rated.count(), n_delivered),
        "page_views_per_parcel": ratio(views, count),
        "notification_delivery_rate": ratio(went_out, notified),
        "alerts_by_kind": {
            row["kind"]: row["n"]
            for row in Alert.objects.filter(shipment__in=parcels)
            .values("kind")
            .annotate(n=Count("pk"))
            .order_by("kind")
        },
    }


def same(rolled: dict, straight: dict) -> None:
    exact = straight.pop("exact_minutes")
    assert {name: rolled[name] for name in straight} == straight
    # The rollup's percentiles: the middle of the bucket the exact one is in.
    for name, value in exact.items():
        expected = None if value is None else buckets.middle(buckets.bucket_of(value))
        assert rolled["ofd_to_delivered_minutes"][name] == expected


def test_the_rollup_answers_what_the_direct_queries_answer(brand, varied_days):
    report = brand_report(brand, DAYS[0], DAYS[-1] + dt.timedelta(days=1))
    assert report["parcels"] == 40
    same(report, direct(brand, DAYS[0], DAYS[-1] + dt.timedelta(days=1)))
    for row in report["by_day"]:
        same(row, direct(brand, row["day"], row["day"]))
    for row in report["by_carrier"]:
        same(row, direct(brand, DAYS[0], DAYS[-1] + dt.timedelta(days=1), carrier=row["carrier"]))
    assert {row["carrier"] for row in report["by_carrier"]} == set(CARRIERS)


def test_a_range_inside_the_rollup_matches_too(brand, varied_days):
    same(brand_report(brand, DAYS[1], DAYS[2]), direct(brand, DAYS[1], DAYS[2]))
