"""The alert rules, without a database: each threshold just under and just
over, facts out of order, terminal statuses; the missed-scan visit's near,
dwell and leave edges, pings out of order, a passing van and a noisy parked
one."""

import dataclasses
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipments.alert_rules import (
    DEFAULTS,
    RULE_KINDS,
    SCAN_LEAD,
    STAFF_RESOLVED,
    AlertKind,
    Facts,
    Visit,
    decide,
    distance_m,
    follow_visit,
    is_delivered_away,
    is_failed_no_retry,
    is_late,
    is_stuck,
    scan_answers_visit,
    time_nearest,
    visit_served_another_stop,
    wander_m,
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


# The missed-scan visit: follow_visit, one ping at a time.

MINUTE = timedelta(minutes=1)
DWELL = DEFAULTS.missed_scan_dwell


def at_distance(m: float, bearing_deg: float = 0.0) -> tuple[float, float]:
    """A point m metres from DEST on this bearing (flat-earth, fine at this scale)."""
    north = m * math.cos(math.radians(bearing_deg))
    east = m * math.sin(math.radians(bearing_deg))
    return DEST[0] + north / 111_195, DEST[1] + east / (111_195 * math.cos(math.radians(DEST[0])))


def walk(visit: Visit, pings: list[tuple[float, datetime]], **kw) -> tuple[Visit, list[datetime]]:
    """Apply (metres, time) pings in order; the visit and the moments a
    missed scan was due."""
    due = []
    for metres, moment in pings:
        lat, lng = at_distance(metres, kw.pop("bearing", 0.0))
        step = follow_visit(visit, lat=lat, lng=lng, at=moment, destination=DEST, **kw)
        visit = step.visit
        if step.missed_scan:
            due.append(moment)
    return visit, due


def test_a_visit_starts_within_the_near_distance_and_not_just_beyond():
    assert walk(Visit(), [(74, NOW)])[0] == Visit(started_at=NOW)
    assert walk(Visit(), [(76, NOW)])[0] == Visit()


def test_the_dwell_just_under_and_just_over():
    under, _ = walk(Visit(), [(10, NOW), (10, NOW + DWELL - SECOND)])
    assert under == Visit(started_at=NOW)
    assert walk(under, [(400, NOW + DWELL)])[1] == []
    over, _ = walk(Visit(), [(10, NOW), (10, NOW + DWELL)])
    assert over == Visit(started_at=NOW, dwelled_at=NOW + DWELL)
    assert walk(over, [(400, NOW + DWELL + SECOND)])[1] == [NOW + DWELL + SECOND]


def test_the_leave_distance_just_under_and_just_over():
    dwelled = Visit(started_at=NOW, dwelled_at=NOW + DWELL)
    later = NOW + DWELL + MINUTE
    stayed, due = walk(dwelled, [(299, later)])
    assert (stayed, due) == (dwelled, [])
    left, due = walk(dwelled, [(301, later)])
    assert due == [later]
    assert left == Visit(started_at=NOW, dwelled_at=NOW + DWELL, left_at=later)


def test_a_van_passing_by_opens_nothing_and_is_forgotten():
    # 6 m/s, a ping every 5 s: from 600 m before the door to 600 m past it,
    # within 75 m of it for about 25 s.
    pings = [(abs(600 - 30 * i), NOW + i * 5 * SECOND) for i in range(41)]
    visit, due = walk(Visit(), pings)
    assert due == []
    assert visit == Visit()


def test_between_near_and_leave_nothing_changes_and_a_return_keeps_the_visit():
    dwelled = Visit(started_at=NOW, dwelled_at=NOW + DWELL)
    visit, due = walk(dwelled, [(150, NOW + 3 * MINUTE), (250, NOW + 4 * MINUTE), (20, NOW + 5 * MINUTE)])
    assert (visit, due) == (dwelled, [])


def test_a_ping_out_of_order_changes_nothing():
    dwelled = Visit(started_at=NOW, dwelled_at=NOW + DWELL)
    assert walk(dwelled, [(900, NOW + DWELL - SECOND)]) == (dwelled, [])
    assert walk(dwelled, [(900, NOW + DWELL)]) == (dwelled, [])
    started = Visit(started_at=NOW)
    assert walk(started, [(10, NOW - MINUTE)]) == (started, [])


def test_after_a_missed_scan_a_new_visit_starts_afresh():
    left = Visit(started_at=NOW, dwelled_at=NOW + DWELL, left_at=NOW + 3 * MINUTE)
    back = NOW + 10 * MINUTE
    assert walk(left, [(100, back)]) == (left, [])
    assert walk(left, [(30, back)])[0] == Visit(started_at=back)


def test_a_brands_own_thresholds():
    mine = dataclasses.replace(
        DEFAULTS, missed_scan_near_m=30.0, missed_scan_dwell=timedelta(seconds=30), missed_scan_leave_m=100.0
    )
    visit, due = walk(
        Visit(), [(40, NOW), (25, NOW + SECOND), (25, NOW + 31 * SECOND), (101, NOW + MINUTE)], thresholds=mine
    )
    assert due == [NOW + MINUTE]
    assert visit.started_at == NOW + SECOND


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_parked_van_dues_exactly_one_missed_scan(seed):
    """Parked 40-70 m from the door, each fix 10-30 m off in any direction,
    pings every 5-15 s for ten minutes, then driving away at 10 m/s."""
    rng = random.Random(seed)
    parked_m, parked_bearing = rng.uniform(40, 70), rng.uniform(0, 360)
    px, py = (parked_m * math.cos(math.radians(parked_bearing)), parked_m * math.sin(math.radians(parked_bearing)))
    visit, due, moment = Visit(), [], NOW
    moments = []
    while moment < NOW + 10 * MINUTE:
        noise, angle = rng.uniform(10, 30), rng.uniform(0, 2 * math.pi)
        x, y = px + noise * math.cos(angle), py + noise * math.sin(angle)
        metres, bearing = math.hypot(x, y), math.degrees(math.atan2(y, x))
        visit, now_due = walk(visit, [(metres, moment)], bearing=bearing)
        due += now_due
        moments.append(moment)
        moment += timedelta(seconds=rng.uniform(5, 15))
    assert due == []
    assert visit.started_at is not None and visit.dwelled_at is not None
    for i in range(1, 60):
        visit, now_due = walk(visit, [(parked_m + 10 * 10 * i, moment)], bearing=parked_bearing)
        due += now_due
        moment += 10 * SECOND
    assert len(due) == 1


def test_a_scan_answers_the_visit_from_shortly_before_it_on():
    assert scan_answers_visit(NOW - SCAN_LEAD, NOW)
    assert not scan_answers_visit(NOW - SCAN_LEAD - SECOND, NOW)
    assert scan_answers_visit(NOW + timedelta(hours=3), NOW)


def test_a_visit_that_served_a_neighbouring_stop():
    visit = Visit(started_at=NOW, dwelled_at=NOW + DWELL, left_at=NOW + 5 * MINUTE)
    # The neighbour scanned just under the dwell before the leave: its visit.
    assert visit_served_another_stop(visit, [NOW + 5 * MINUTE - DWELL + SECOND])
    # Scanned just over the dwell before: what came after is a visit of its own.
    assert not visit_served_another_stop(visit, [NOW + 5 * MINUTE - DWELL - SECOND])
    # Scanned before this visit began, or none: nothing served.
    assert not visit_served_another_stop(visit, [NOW - SECOND])
    assert not visit_served_another_stop(visit, [])


def test_time_nearest_counts_each_ping_nearer_this_door_until_the_next():
    door, other = (51.5, -0.1), (51.5 + 40 / 111_195, -0.1)
    at_door = (51.5 + 2 / 111_195, -0.1)
    midway = (51.5 + 20 / 111_195, -0.1)
    at_other = (51.5 + 39 / 111_195, -0.1)
    pings = [
        (NOW + 60 * SECOND, *midway),
        (NOW, *at_door),
        (NOW + 90 * SECOND, *at_other),
        (NOW + 100 * SECOND, *at_door),
    ]
    # At the door from 0 to 60 s; halfway counts for neither; the last ping
    # has no next one.
    assert time_nearest(pings, door, [other], near_m=75) == 60 * SECOND
    assert time_nearest(pings, other, [door], near_m=75) == 10 * SECOND
    # Without a neighbour, every ping within the near distance counts.
    assert time_nearest(pings, door, [], near_m=75) == 100 * SECOND


def test_standing_a_dwell_at_this_door_keeps_the_visit_its_own():
    visit = Visit(started_at=NOW, dwelled_at=NOW + DWELL, left_at=NOW + 5 * MINUTE)
    neighbour_scan = [NOW + 5 * MINUTE - 30 * SECOND]
    assert visit_served_another_stop(visit, neighbour_scan, own_time=DWELL - SECOND)
    assert not visit_served_another_stop(visit, neighbour_scan, own_time=DWELL)


def test_a_pass_by_then_a_wait_down_the_road_then_a_pass_back_is_no_visit():
    """Past the door (60 m), six minutes at another stop 250 m off (short of
    the leave distance), back past the door (30 m), away: before the dwell,
    a ping beyond the midway distance forgets the visit."""
    visit, moment, due = Visit(), NOW, []
    track = [60] + [250] * 36 + [30, 400]
    for metres in track:
        step = follow_visit(visit, lat=metres_north(metres)[0], lng=DEST[1], at=moment, destination=DEST)
        visit, moment = step.visit, moment + 10 * SECOND
        due.append(step.missed_scan)
    assert not any(due)
    assert visit == Visit()


def test_the_midway_distance_just_under_and_just_over():
    assert wander_m() == (DEFAULTS.missed_scan_near_m + DEFAULTS.missed_scan_leave_m) / 2
    for metres, kept in ((wander_m() - 1, True), (wander_m() + 1, False)):
        started = follow_visit(Visit(), lat=DEST[0], lng=DEST[1], at=NOW, destination=DEST).visit
        step = follow_visit(started, lat=metres_north(metres)[0], lng=DEST[1], at=NOW + 30 * SECOND, destination=DEST)
        assert (step.visit.started_at is not None) is kept
    # After the dwell, only the leave distance ends the visit.
    dwelled = Visit(started_at=NOW, dwelled_at=NOW + DWELL)
    step = follow_visit(
        dwelled, lat=metres_north(wander_m() + 1)[0], lng=DEST[1], at=NOW + 3 * MINUTE, destination=DEST
    )
    assert step.visit == dwelled and not step.missed_scan
