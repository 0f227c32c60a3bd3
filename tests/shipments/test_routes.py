"""Which days' routes may be today's (shipments/routes.py)."""

import datetime as dt

from django.utils import timezone

from shipments import routes


def test_the_days_that_may_be_today_are_utcs_day_and_one_either_side(monkeypatch):
    # Late on the 1st in UTC is already the 2nd east of it, still the 1st west.
    now = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    assert routes.days_that_may_be_today() == [dt.date(2026, 2, 28), dt.date(2026, 3, 1), dt.date(2026, 3, 2)]


def test_an_aware_time_in_another_zone_counts_from_utcs_day(monkeypatch):
    now = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=10)))  # 22:00 UTC on the 1st
    monkeypatch.setattr(timezone, "now", lambda: now)
    assert routes.days_that_may_be_today()[1] == dt.date(2026, 3, 1)
