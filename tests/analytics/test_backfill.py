"""manage.py analytics_backfill: a portal's first rollup, the same rows
however often it runs."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from analytics.models import ROLLUP_WATERMARK, DailyRollup, Watermark
from analytics.report import brand_report

from .conftest import D

pytestmark = pytest.mark.django_db


def rows():
    return [
        {k: v for k, v in row.items() if k != "id"}
        for row in DailyRollup.objects.order_by("brand", "day", "driver_ref", "carrier").values()
    ]


def backfill(*args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command("analytics_backfill", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_portal_with_history_gets_the_rollup_the_beat_would_keep(brand, rolled_up):
    kept_by_beat = rows()
    expected = brand_report(brand, D, D + dt.timedelta(days=1))
    DailyRollup.objects.all().delete()
    Watermark.objects.all().delete()

    out, err = backfill("--brand", brand.slug)

    assert rows() == kept_by_beat
    assert brand_report(brand, D, D + dt.timedelta(days=1))["by_day"] == expected["by_day"]
    assert f"{brand.slug}: " in err and " days, " in err  # the progress line
    assert "Done: " in out
    # The beat takes over from the backfill's start.
    assert Watermark.objects.filter(name=ROLLUP_WATERMARK).exists()


def test_running_it_again_writes_the_same_rows(brand, day_of_deliveries):
    backfill()
    first = rows()
    assert first
    backfill()
    backfill("--from", str(D), "--to", str(D))
    assert rows() == first


def test_a_range_counts_only_its_days(brand, day_of_deliveries):
    backfill("--brand", brand.slug, "--from", str(D + dt.timedelta(days=1)), "--to", str(D + dt.timedelta(days=3)))
    assert set(DailyRollup.objects.values_list("day", flat=True)) == {D + dt.timedelta(days=1)}


def test_a_stale_row_of_a_counted_day_is_replaced(brand, rolled_up):
    DailyRollup.objects.filter(day=D).update(parcels=999)
    backfill("--from", str(D), "--to", str(D))
    assert brand_report(brand, D, D)["parcels"] == 5


def test_only_the_named_brand_is_counted(brand, other_brand, make_shipment, day_of_deliveries):
    make_shipment("OTHER1", for_brand=other_brand)
    backfill("--brand", other_brand.slug)
    assert set(DailyRollup.objects.values_list("brand", flat=True)) == {other_brand.pk}


def test_a_brand_without_parcels_says_so(other_brand):
    out, _ = backfill("--brand", other_brand.slug)
    assert "no parcels" in out
    assert not DailyRollup.objects.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("--brand", "no-such-brand"),
        ("--from", "2026-11-27", "--to", "2026-11-26"),
        ("--from", "26/11/2026"),
    ],
)
def test_bad_arguments_are_refused(db, args):
    with pytest.raises(CommandError):
        backfill(*args)
