"""Every figure of the analytics on the day whose answers are known
(tests/analytics/conftest.py), read back through the report."""

import datetime as dt

import pytest

from analytics import buckets, folding, rollup
from analytics.buckets import percentile
from analytics.models import DailyRollup
from analytics.report import brand_report, check_range
from pages import counting

from .conftest import D, at, record

pytestmark = pytest.mark.django_db


def test_the_days_totals(brand, rolled_up):
    report = brand_report(brand, D, D)
    assert report["parcels"] == 5
    assert report["delivered"] == 4
    # A and C by their first window's end; B was late against its first
    # window (11:00) though inside the second (15:00); D had none.
    assert report["on_time_rate"] == pytest.approx(2 / 3, abs=1e-4)
    # C was redelivered.
    assert report["first_attempt_rate"] == 0.75
    # 30, 30, 45, 120 minutes: nearest-rank median and p90 are 30 and 120,
    # reported as the middle of their buckets, [30, 35) and [120, 135).
    assert report["ofd_to_delivered_minutes"] == {"median": 32, "p90": 127}
    # 5 and 3 of four delivered: the unrated two count as unrated.
    assert report["rating_average"] == 4.0
    assert report["rating_response_rate"] == 0.5
    assert report["alerts_by_kind"] == {"failed_no_retry": 1, "late": 1, "stuck": 1}
    # Delivered, sent / delivered, sent, failed; the queued one not yet.
    assert report["notification_delivery_rate"] == pytest.approx(2 / 3, abs=1e-4)


def test_a_delivery_after_midnight_in_the_brands_zone_counts_on_the_next_day(brand, rolled_up):
    next_day = brand_report(brand, D + dt.timedelta(days=1), D + dt.timedelta(days=1))
    assert (next_day["parcels"], next_day["delivered"]) == (1, 1)
    both = brand_report(brand, D, D + dt.timedelta(days=1))
    assert [row["day"] for row in both["by_day"]] == [D, D + dt.timedelta(days=1)]
    assert both["delivered"] == 5


def test_by_driver_and_carrier(brand, rolled_up):
    report = brand_report(brand, D, D)
    drivers = {row["driver_ref"]: row for row in report["by_driver"]}
    assert set(drivers) == {"", "drv-1", "drv-2"}
    assert drivers["drv-1"]["on_time_rate"] == 0.5
    assert drivers["drv-1"]["first_attempt_rate"] == 1.0
    assert drivers["drv-2"]["first_attempt_rate"] == 0.0
    assert drivers["drv-2"]["alerts_by_kind"] == {"failed_no_retry": 1, "stuck": 1}
    # D (delivered, no window) and F (not delivered): no on-time denominator.
    assert drivers[""]["on_time_rate"] is None
    assert drivers[""]["parcels"] == 2
    carriers = {row["carrier"]: row for row in report["by_carrier"]}
    # A 120 and B 30 minutes.
    assert carriers["acme-fleet"]["ofd_to_delivered_minutes"] == {"median": 32, "p90": 127}
    assert carriers["other-carrier"]["delivered"] == 2


def test_page_views_and_support_contacts_per_parcel(brand, client, day_of_deliveries):
    a = day_of_deliveries["A"]
    for _ in range(3):
        assert client.get(a.get_absolute_url()).status_code == 200
    assert client.get(a.get_absolute_url(), headers={"HX-Request": "true"}).status_code == 200
    response = client.get(f"/t/{a.public_token}/support/email/")
    assert response.status_code == 302
    assert response["Location"] == "mailto:help@acme.example"
    folding.fold_counts()
    rollup.refresh()
    report = brand_report(brand, D, D)
    # Three full loads (not the live fragment) over five parcels.
    assert report["page_views_per_parcel"] == 0.6
    # One click and one contact staff logged (the note is none), per 100.
    assert report["support_contacts_per_100_parcels"] == 40.0


def test_no_denominator_is_null(brand, db):
    report = brand_report(brand, D, D)
    assert report["parcels"] == 0
    assert report["on_time_rate"] is None
    assert report["first_attempt_rate"] is None
    assert report["ofd_to_delivered_minutes"] == {"median": None, "p90": None}
    assert report["by_day"] == []


def test_a_late_event_moves_the_figures_at_the_next_run(brand, rolled_up):
    # A failed attempt on A that happened before its delivery arrives late.
    record(rolled_up["A"], "failed_attempt", at(9))
    # And a delivered scan for E that happened before midnight in Paris.
    record(rolled_up["E"], "delivered", at(22, 50), external_id="early")
    rollup.refresh()
    report = brand_report(brand, D, D + dt.timedelta(days=1))
    assert report["first_attempt_rate"] == pytest.approx(3 / 5)
    # E left its old day: no row of D+1 remains.
    assert [row["day"] for row in report["by_day"]] == [D]
    assert not DailyRollup.objects.filter(day=D + dt.timedelta(days=1)).exists()


def test_a_second_run_with_nothing_new_changes_nothing(brand, rolled_up):
    before = list(DailyRollup.objects.order_by("day", "driver_ref", "carrier").values())
    assert rollup.refresh() > 0  # the overlap recounts the same days...
    after = list(DailyRollup.objects.order_by("day", "driver_ref", "carrier").values())
    assert [{k: v for k, v in row.items() if k != "id"} for row in after] == [
        {k: v for k, v in row.items() if k != "id"} for row in before
    ]


def test_a_run_past_the_overlap_recounts_nothing(brand, rolled_up, time_machine):
    time_machine.move_to(dt.datetime.now(dt.UTC) + rollup.OVERLAP * 3)
    rollup.refresh()
    assert rollup.refresh() == 0


def test_another_brands_parcels_are_not_counted(brand, other_brand, make_shipment, rolled_up):
    theirs = make_shipment("OTHER", for_brand=other_brand)
    record(theirs, "delivered", at(10))
    rollup.refresh()
    assert brand_report(brand, D, D)["delivered"] == 4
    assert brand_report(other_brand, D, D)["delivered"] == 1


@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        (D, D, False),
        (D, D - dt.timedelta(days=1), True),
        (D, D + dt.timedelta(days=365), False),  # 366 days
        (D, D + dt.timedelta(days=366), True),  # 367 days
    ],
)
def test_range_limits(start, end, refused):
    assert bool(check_range(start, end)) is refused


def test_percentile_nearest_rank_over_buckets():
    def counts(**minutes):
        spread = [0] * len(buckets.EDGES)
        for value, n in minutes.items():
            spread[buckets.bucket_of(int(value.removeprefix("m")))] += n
        return spread

    assert percentile(counts(m1=9, m100=1), 0.9) == 2  # [0, 5)
    assert percentile(counts(m1=8, m100=2), 0.9) == 97  # [90, 105)
    assert percentile(counts(m3000=1), 0.5) == 2880  # the catch-all reports its edge
    assert percentile(counts(), 0.5) is None


@pytest.mark.parametrize("minutes", [0, 4, 5, 59, 60, 61, 239, 240, 719, 720, 1439, 1440, 2879])
def test_a_bucket_reports_within_half_its_width(minutes):
    index = buckets.bucket_of(minutes)
    lower, upper = buckets.EDGES[index], buckets.EDGES[index + 1]
    assert lower <= minutes < upper
    assert abs(buckets.middle(index) - minutes) <= (upper - lower) // 2


def test_support_links_only_lead_to_the_brands_own_contact(brand, client, day_of_deliveries):
    token = day_of_deliveries["A"].public_token
    assert client.get(f"/t/{token}/support/phone/").status_code == 404  # the brand has no phone
    assert client.get(f"/t/{token}/support/https:evil.example/").status_code == 404
    assert client.get("/t/" + "x" * 43 + "/support/email/").status_code == 404
    assert counting.support_target(brand, "url") == ""
