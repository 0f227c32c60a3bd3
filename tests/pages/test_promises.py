"""What the pages say of when (pages/promises.py), without a database."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import translation

from pages.presenters import LocalTimes
from pages.promises import delivery_times, fresh_until, is_running_late
from shipments.models import Shipment
from shipments.statuses import TERMINAL, Status

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LONDON = zoneinfo.ZoneInfo("Europe/London")
SECOND = timedelta(seconds=1)


def parcel(status=Status.OUT_FOR_DELIVERY, *, start=None, end=None, eta=None) -> Shipment:
    return Shipment(status=status, promised_window_start=start, promised_window_end=end, eta=eta)


def times():
    with translation.override("en"):
        return LocalTimes(LONDON)


def when(shipment, alerts=(), now=NOW):
    return delivery_times(shipment, frozenset(alerts), times(), now)


@pytest.mark.parametrize(
    ("end", "late"),
    [(NOW + SECOND, False), (NOW, False), (NOW - SECOND, True)],
    ids=["window ends just after now", "window ends now", "window ended just before now"],
)
def test_late_from_the_moment_the_window_has_ended(end, late):
    shipment = parcel(start=end - timedelta(hours=4), end=end)
    assert is_running_late(shipment, frozenset(), NOW) is late
    shown = when(shipment)
    assert shown["late"] is late
    if late:
        assert shown["window_start"] is None and shown["window_end"] is None
        assert shown["was_window_end"]["iso"] == end.astimezone(LONDON).isoformat()
    else:
        assert shown["window_end"]["iso"] == end.astimezone(LONDON).isoformat() and shown["was_window_end"] is None


@pytest.mark.parametrize(
    ("eta_after_end", "late"), [(SECOND, True), (timedelta(0), False), (-SECOND, False)], ids=["after", "at", "before"]
)
def test_late_when_the_eta_falls_after_the_window(eta_after_end, late):
    end = NOW + timedelta(hours=2)
    shipment = parcel(start=NOW, end=end, eta=end + eta_after_end)
    shown = when(shipment)
    assert shown["late"] is late
    # The expected time is still to come, so it is shown either way.
    assert shown["eta"]["iso"] == (end + eta_after_end).astimezone(LONDON).isoformat()


def test_an_open_late_alert_makes_it_late_whatever_the_clock_says():
    shipment = parcel(start=NOW, end=NOW + timedelta(hours=2), eta=NOW + timedelta(hours=1))
    assert when(shipment)["late"] is False
    shown = when(shipment, {"late"})
    assert shown["late"] is True and shown["eta"] is not None and shown["was_window_start"] is not None


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_finished_journey_is_never_late_nor_promised_anything(status):
    shipment = parcel(status, start=NOW - timedelta(hours=5), end=NOW - timedelta(hours=1), eta=NOW + SECOND)
    shown = when(shipment, {"late", "missed_scan"})
    assert shown["late"] is False and shown["checking"] is False
    assert all(shown[key] is None for key in ("eta", "window_start", "window_end", "was_window_start"))
    assert fresh_until(shipment, NOW) is None


def test_an_expected_time_that_has_passed_is_not_shown():
    window = {"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=2)}
    passed = when(parcel(**window, eta=NOW - SECOND))
    assert passed["eta"] is None and passed["window_start"] is not None and passed["late"] is False
    assert when(parcel(**window, eta=NOW))["eta"] is None
    assert when(parcel(**window, eta=NOW + SECOND))["eta"] is not None


def test_late_with_no_new_time_shows_none():
    shown = when(parcel(start=NOW - timedelta(hours=5), end=NOW - timedelta(hours=1), eta=NOW - timedelta(hours=2)))
    assert shown["late"] is True and shown["eta"] is None and shown["was_window_start"] is not None


def test_checking_while_a_missed_scan_is_open():
    assert when(parcel(), {"missed_scan"})["checking"] is True
    assert when(parcel(), {"stuck", "customer_report"})["checking"] is False


def test_fresh_until_the_next_moment_the_clock_changes_what_is_said():
    end, eta = NOW + timedelta(hours=2), NOW + timedelta(hours=1)
    assert fresh_until(parcel(start=NOW, end=end, eta=eta), NOW) == eta
    assert fresh_until(parcel(start=NOW, end=end, eta=end + timedelta(hours=1)), NOW) == end
    # Late already: the new expected time passing is what changes next.
    later = NOW + timedelta(minutes=30)
    assert fresh_until(parcel(start=NOW - timedelta(hours=3), end=NOW - SECOND, eta=later), NOW) == later
    assert fresh_until(parcel(start=NOW - timedelta(hours=3), end=NOW - SECOND), NOW) is None
    assert fresh_until(parcel(end=NOW), NOW) == NOW
    assert fresh_until(parcel(), NOW) is None
