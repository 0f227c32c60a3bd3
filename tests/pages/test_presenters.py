"""What the tracking page shows (pages/presenters.py), without a database."""

import zoneinfo
from datetime import UTC, date, datetime

import time_machine
from django.utils import translation

from pages.presenters import LocalTimes, StopView, progress_bar, todays_stop
from shipments.statuses import Status

SEEN = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
# As page_reads.stop_rows gives them: the newest route first.
STOPS = [
    (date(2026, 11, 27), False, 51.5, -0.1, SEEN, 4),
    (date(2026, 11, 26), False, 51.5, -0.1, SEEN, 2),
    (date(2026, 11, 26), True, 51.6, -0.2, SEEN, 0),  # an older route of the same day
    (date(2026, 11, 25), False, 51.5, -0.1, SEEN, 7),
]


@time_machine.travel(datetime(2026, 11, 26, 12, 0, tzinfo=UTC), tick=False)
def test_todays_stop_is_the_newest_route_of_the_recipients_today():
    assert todays_stop(STOPS, zoneinfo.ZoneInfo("Europe/London")) == StopView(False, 2, 51.5, -0.1, SEEN)
    assert todays_stop(STOPS, zoneinfo.ZoneInfo("Pacific/Kiritimati")).ahead == 4  # already the 27th there
    assert todays_stop(STOPS[1:], zoneinfo.ZoneInfo("Pacific/Kiritimati")) is None
    assert todays_stop([], zoneinfo.ZoneInfo("UTC")) is None


@time_machine.travel(datetime(2026, 11, 26, 5, 0, tzinfo=UTC), tick=False)
def test_todays_stop_behind_utc():
    assert todays_stop(STOPS, zoneinfo.ZoneInfo("Pacific/Pago_Pago")).ahead == 7  # still the 25th there


def test_local_times_in_the_recipients_zone():
    times = LocalTimes(zoneinfo.ZoneInfo("America/New_York"))
    moment = times.moment(datetime(2026, 11, 26, 14, 5, tzinfo=UTC))
    assert moment == {"iso": "2026-11-26T09:05:00-05:00", "text": "Thu 26 Nov, 09:05", "time": "09:05"}
    assert times.text(datetime(2026, 11, 27, 3, 30, tzinfo=UTC)) == "Thu 26 Nov, 22:30"
    assert times.moment(None) is None


def test_day_names_are_kept_per_language():
    moment = datetime(2026, 11, 26, 14, 5, tzinfo=UTC)
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    with translation.override("en"):
        assert LocalTimes(zone).text(moment) == "Thu 26 Nov, 15:05"
    with translation.override("de"):
        assert LocalTimes(zone).text(moment) == "Do 26 Nov, 15:05"
    with translation.override("es"):
        assert LocalTimes(zone).moment(moment)["text"] == "jue 26 nov, 15:05"


def test_the_progress_bar_is_kept_per_status_and_language():
    with translation.override("en"):
        on_the_van = progress_bar(Status.OUT_FOR_DELIVERY)
        delivered = progress_bar(Status.DELIVERED)
        cancelled = progress_bar(Status.CANCELLED)
    with translation.override("de"):
        german = progress_bar(Status.OUT_FOR_DELIVERY)
    assert on_the_van.count("(done)") == 2 and on_the_van.count('aria-current="step"') == 1
    assert 'class="progress"' in on_the_van and 'class="progress off-track"' in cancelled
    assert delivered.count("(done)") == 4 and "aria-current" not in delivered
    assert "Zustellfortschritt" in german and german.count("(erledigt)") == 2 and "(done)" not in german
