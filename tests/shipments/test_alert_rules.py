"""The alert rules, without a database: each threshold just under and just
over, facts out of order, terminal statuses."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipments.alert_rules import (
    RULE_KINDS,
    STAFF_RESOLVED,
    AlertKind,
    Facts,
    decide,
    distance_m,
    is_delivered_away,
    is_failed_no_retry,
    is_late,
    is_stuck,
)
from shipments.statuses import TERMINAL, Status

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
# About 0.0009° of latitude per 100 m.
DEST = (52.52, 13.405)


def metres_north(m: float) -> tuple[float, float]:
    return DEST[0] + m / 111_195, DEST[1]


@pytest.mark.parametrize(
    ("status", "limit"),
    [
        (Status.IN_TRANSIT, timedelta(hours=24)),
        (Status.INFO_RECEIVED, timedelta(hours=24)),
        (Status.OUT_FOR_DELIVERY, timedelta(hours=4)),
    ],
)
def test_stuck_just_under_and_just_over(status, limit):
    assert not is_stuck(Facts(status=status, last_event_at=NOW - limit + SECOND), NOW)
    assert not is_stuck(Facts(status=status, last_event_at=NOW - limit), NOW)
    assert is_stuck(Facts(status=status, last_event_at=NOW - limit - SECOND), NOW)


def test_stuck_not_for_other_statuses_or_without_events():
    old = NOW - timedelta(days=30)
    for status in (Status.PENDING, Status.FAILED_ATTEMPT, *TERMINAL):
        assert not is_stuck(Facts(status=status, last_event_at=old), NOW)
    assert not is_stuck(Facts(status=Status.IN_TRANSIT), NOW)


def test_a_last_event_ahead_of_now_is_not_stuck():
    assert not is_stuck(Facts(status=Status.OUT_FOR_DELIVERY, last_event_at=NOW + timedelta(hours=9)), NOW)


def test_late_just_under_and_just_over_the_window():
    assert not is_late(Facts(status=Status.OUT_FOR_DELIVERY, window_end=NOW), NOW)
    assert is_late(Facts(status=Status.OUT_FOR_DELIVERY, window_end=NOW - SECOND), NOW)


def test_late_when_the_eta_falls_after_the_window_and_not_when_it_moves_back():
    end = NOW + timedelta(hours=2)
    assert is_late(Facts(status=Status.IN_TRANSIT, window_end=end, eta=end + SECOND), NOW)
    assert not is_late(Facts(status=Status.IN_TRANSIT, window_end=end, eta=end), NOW)
    assert not is_late(Facts(status=Status.IN_TRANSIT, window_end=end), NOW)


def test_late_never_when_terminal_or_without_a_window():
    for status in TERMINAL:
        assert not is_late(Facts(status=status, window_end=NOW - timedelta(days=3)), NOW)
    assert not is_late(Facts(status=Status.IN_TRANSIT, eta=NOW + timedelta(days=3)), NOW)


def test_failed_no_retry_just_under_and_just_over_a_day():
    day = timedelta(days=1)
    assert not is_failed_no_retry(Facts(status=Status.FAILED_ATTEMPT, last_event_at=NOW - day), NOW)
    assert is_failed_no_retry(Facts(status=Status.FAILED_ATTEMPT, last_event_at=NOW - day - SECOND), NOW)


def test_failed_no_retry_closed_by_a_new_window_or_attempt():
    failed = NOW - timedelta(days=2)
    assert not is_failed_no_retry(
        Facts(status=Status.FAILED_ATTEMPT, last_event_at=failed, window_end=failed + timedelta(days=3)), NOW
    )
    # A window that ended before the failure is not a new one.
    assert is_failed_no_retry(
        Facts(status=Status.FAILED_ATTEMPT, last_event_at=failed, window_end=failed - SECOND), NOW
    )
    assert not is_failed_no_retry(Facts(status=Status.OUT_FOR_DELIVERY, last_event_at=failed), NOW)


def test_delivered_away_just_under_and_just_over_200_m():
    def facts(m):
        lat, lng = metres_north(m)
        return Facts(
            status=Status.DELIVERED,
            delivered_lat=lat,
            delivered_lng=lng,
            destination_lat=DEST[0],
            destination_lng=DEST[1],
        )

    assert not is_delivered_away(facts(199))
    assert is_delivered_away(facts(201))
    assert not is_delivered_away(Facts(status=Status.DELIVERED, delivered_lat=DEST[0], delivered_lng=DEST[1]))


def test_distance_is_about_right():
    assert distance_m(*DEST, *metres_north(1000)) == pytest.approx(1000, abs=1)


def test_carrier_exception_opens_and_a_later_status_resolves_it():
    for status in (Status.EXCEPTION, Status.RETURNED_TO_SENDER):
        assert AlertKind.CARRIER_EXCEPTION in decide(Facts(status=status), NOW).open
    assert AlertKind.CARRIER_EXCEPTION in decide(Facts(status=Status.OUT_FOR_DELIVERY), NOW).resolve


def test_a_delivered_parcel_resolves_late_and_stuck_but_not_delivered_away():
    lat, lng = metres_north(5000)
    decision = decide(
        Facts(
            status=Status.DELIVERED,
            last_event_at=NOW - timedelta(days=5),
            window_end=NOW - timedelta(days=6),
            delivered_lat=lat,
            delivered_lng=lng,
            destination_lat=DEST[0],
            destination_lng=DEST[1],
        ),
        NOW,
    )
    assert decision.open == {AlertKind.DELIVERED_AWAY}
    assert {AlertKind.LATE, AlertKind.STUCK, AlertKind.FAILED_NO_RETRY} <= decision.resolve


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))


@given(
    status=st.sampled_from(list(Status)),
    last=st.none() | moments,
    end=st.none() | moments,
    eta=st.none() | moments,
    now=moments,
)
def test_decide_never_opens_and_resolves_the_same_kind(status, last, end, eta, now):
    decision = decide(Facts(status=status, last_event_at=last, window_end=end, eta=eta), now)
    assert not decision.open & decision.resolve
    assert decision.open | decision.resolve <= RULE_KINDS
    assert not decision.resolve & STAFF_RESOLVED
    assert (decision.open | decision.resolve | STAFF_RESOLVED) >= RULE_KINDS
    if status in TERMINAL:
        assert not decision.open & {AlertKind.STUCK, AlertKind.LATE, AlertKind.FAILED_NO_RETRY}


@given(
    status=st.sampled_from([Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY]),
    now=moments,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)
def test_a_later_now_never_unsticks_the_same_facts(status, now, later):
    facts = Facts(status=status, last_event_at=now - timedelta(hours=5))
    if is_stuck(facts, now):
        assert is_stuck(facts, now + later)
