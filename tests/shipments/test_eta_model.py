"""The ETA model, without a database: legs, hours, doors and windows."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipments.eta_model import (
    DEFAULT_LEARNED,
    MIN_BUCKET_SAMPLES,
    Estimate,
    Learned,
    Point,
    Samples,
    StraightLineTravel,
    bucket,
    departure,
    estimate_route,
    learn,
    no_history_sides,
    point_distance_m,
    spread,
    widened,
)

AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
HERE = Point(51.5000, -0.1200)
# Doors about 1.1 km apart, due north.
DOORS = [Point(51.5000 + 0.01 * k, -0.1200) for k in range(1, 6)]


def learned(**fields):
    base = {
        "speed_mps_by_hour": {},
        "default_speed_mps": 8.0,
        "detour": 1.25,
        "service_s": 120.0,
        "error_s_by_bucket": {},
        "samples": 10,
    }
    return Learned(**{**base, **fields})


def stops(doors=DOORS):
    return [(100 + k, door) for k, door in enumerate(doors)]


def test_buckets():
    assert [bucket(n) for n in (1, 2, 3, 4, 10, 11, 40)] == ["1", "2-3", "2-3", "4-10", "4-10", "11+", "11+"]


def test_each_arrival_is_the_legs_at_the_learned_speed_plus_the_doors_before_it():
    knows = learned()
    estimates = estimate_route(origin=HERE, at=AT, stops=stops(), learned=knows)
    assert [e.stop_id for e in estimates] == [100, 101, 102, 103, 104]
    assert [e.stops_ahead for e in estimates] == [1, 2, 3, 4, 5]
    expected, previous = 0.0, HERE
    for index, (estimate, door) in enumerate(zip(estimates, DOORS, strict=True)):
        expected += point_distance_m(previous, door) * 1.25 / 8.0 + (120.0 if index else 0.0)
        assert (estimate.eta - AT).total_seconds() == pytest.approx(expected, abs=0.01)
        previous = door


def test_a_slow_hour_makes_a_later_arrival():
    # 08:00 is slow, 11:00 fast: the same route, started in each.
    knows = learned(speed_mps_by_hour={8: 4.0, 11: 10.0})
    morning = estimate_route(origin=HERE, at=AT.replace(hour=8), stops=stops(), learned=knows)
    late_morning = estimate_route(origin=HERE, at=AT.replace(hour=11), stops=stops(), learned=knows)
    assert morning[-1].eta - AT.replace(hour=8) > late_morning[-1].eta - AT.replace(hour=11)
    first_leg = point_distance_m(HERE, DOORS[0]) * 1.25
    assert (morning[0].eta - AT.replace(hour=8)).total_seconds() == pytest.approx(first_leg / 4.0, abs=0.01)


def test_the_hour_is_the_local_one():
    london_summer = datetime(2026, 7, 1, 7, 30, tzinfo=UTC)  # 08:30 in London
    knows = learned(speed_mps_by_hour={8: 4.0, 7: 12.0})
    local = estimate_route(
        origin=HERE, at=london_summer, stops=stops(DOORS[:1]), learned=knows, tz=ZoneInfo("Europe/London")
    )
    utc = estimate_route(origin=HERE, at=london_summer, stops=stops(DOORS[:1]), learned=knows)
    assert local[0].eta > utc[0].eta


def test_a_door_within_a_few_metres_is_reached_now():
    [estimate] = estimate_route(origin=HERE, at=AT, stops=[(1, Point(HERE.lat + 0.0001, HERE.lng))], learned=learned())
    assert estimate.eta == AT


def test_before_history_the_window_grows_with_the_stops_ahead_and_holds_the_estimate():
    estimates = estimate_route(origin=HERE, at=AT, stops=stops(), learned=DEFAULT_LEARNED)
    widths = [e.window_end - e.window_start for e in estimates]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    for e in estimates:
        assert e.window_start <= e.eta <= e.window_end
        assert e.window_start >= AT
    early, late = no_history_sides(3, 1800)
    assert late > early > 0


def test_a_learned_window_uses_the_buckets_errors_scaled_within_the_bucket():
    knows = learned(error_s_by_bucket={"1": (60.0, 240.0), "4-10": (300.0, 600.0)})
    estimates = estimate_route(origin=HERE, at=AT, stops=stops(), learned=knows)
    first = estimates[0]
    assert first.eta - first.window_start == timedelta(seconds=60)
    assert first.window_end - first.eta == timedelta(seconds=240)
    fourth = estimates[3]
    assert (fourth.window_end - fourth.eta).total_seconds() == pytest.approx(600 * spread(4))
    # "2-3" was never learned: the no-history window stands in.
    second = estimates[1]
    _, late = no_history_sides(2, (second.eta - AT).total_seconds())
    assert (second.window_end - second.eta).total_seconds() == pytest.approx(late)


def test_the_window_never_starts_before_the_moment_it_is_made():
    knows = learned(error_s_by_bucket={"1": (3600.0, 60.0)})
    [estimate] = estimate_route(origin=HERE, at=AT, stops=stops(DOORS[:1]), learned=knows)
    assert estimate.window_start == AT


class FixedTravel:
    def __init__(self, seconds):
        self.seconds = seconds
        self.calls = []

    def leg_seconds(self, legs, depart, learned):
        self.calls.append((list(legs), depart))
        return list(self.seconds)


class BrokenTravel:
    def leg_seconds(self, legs, depart, learned):
        raise TimeoutError("router down")


def test_a_given_travel_times_the_legs():
    travel = FixedTravel([600.0, 300.0])
    estimates = estimate_route(origin=HERE, at=AT, stops=stops(DOORS[:2]), learned=learned(), travel=travel)
    assert [(e.eta - AT).total_seconds() for e in estimates] == [600.0, 600.0 + 120.0 + 300.0]
    [(legs, depart)] = travel.calls
    assert legs == [(HERE, DOORS[0]), (DOORS[0], DOORS[1])] and depart == AT


@pytest.mark.parametrize("travel", [BrokenTravel(), FixedTravel([600.0])])
def test_a_travel_that_fails_or_answers_the_wrong_legs_falls_back_to_the_straight_line(travel):
    knows = learned()
    expected = estimate_route(origin=HERE, at=AT, stops=stops(DOORS[:2]), learned=knows)
    assert estimate_route(origin=HERE, at=AT, stops=stops(DOORS[:2]), learned=knows, travel=travel) == expected


def test_no_stops_no_estimates():
    assert estimate_route(origin=HERE, at=AT, stops=[], learned=DEFAULT_LEARNED) == []


def test_straight_line_travel_reads_the_speed_of_the_hour_each_leg_starts_in():
    # A long first leg at 4 m/s crosses into 10:00, where the van runs at 10 m/s.
    knows = learned(speed_mps_by_hour={9: 4.0, 10: 10.0}, detour=1.0, service_s=0.0)
    far = Point(HERE.lat + 0.13, HERE.lng)  # ~14.5 km: over an hour at 4 m/s
    legs = [(HERE, far), (far, Point(far.lat + 0.01, far.lng))]
    first, second = StraightLineTravel().leg_seconds(legs, AT, knows)
    assert first == pytest.approx(point_distance_m(HERE, far) / 4.0)
    assert second == pytest.approx(point_distance_m(*legs[1]) / 10.0)


def test_departure_waits_out_the_door_while_a_scan_has_not_come():
    knows = learned(service_s=200.0)
    assert departure(AT, knows) == AT
    assert departure(AT, knows, visiting_since=AT - timedelta(seconds=50)) == AT + timedelta(seconds=150)
    assert departure(AT, knows, visiting_since=AT - timedelta(seconds=500)) == AT


def test_learn_keeps_the_defaults_without_enough_history():
    samples = Samples()
    samples.add_leg(9, 500.0, 100.0)
    samples.service_s.extend([100.0, 200.0])
    samples.add_error(1, 30.0)
    got = learn(samples)
    assert got.default_speed_mps == DEFAULT_LEARNED.default_speed_mps
    assert got.speed_mps_by_hour == {}
    assert got.service_s == DEFAULT_LEARNED.service_s
    assert got.error_s_by_bucket == {}


def test_learn_from_enough_history():
    samples = Samples()
    samples.straight_m, samples.road_m = 10_000.0, 14_000.0
    samples.add_leg(8, 3_000.0, 1_000.0)  # 3 m/s straight, 4.2 m/s by road
    samples.add_leg(11, 6_000.0, 1_000.0)
    samples.service_s.extend([60.0, 60.0, 60.0, 60.0, 360.0])
    for k in range(MIN_BUCKET_SAMPLES * 5):
        samples.add_error(1, float(k - 20))  # -20 .. 79 seconds
    got = learn(samples)
    assert got.detour == pytest.approx(1.4)
    assert got.speed_mps_by_hour == {8: pytest.approx(4.2), 11: pytest.approx(8.4)}
    assert got.default_speed_mps == pytest.approx(9_000 * 1.4 / 2_000)
    # The mean door, long ones included: they add up along a route.
    assert got.service_s == pytest.approx(120.0)
    early, late = got.error_s_by_bucket["1"]
    assert 10 < early < 20 and 65 < late < 75
    # A driver with little history keeps the area's figures where theirs are thin.
    own = Samples()
    own.service_s.extend([30.0] * 6)
    mine = learn(own, fallback=got)
    assert mine.service_s == 30.0 and mine.detour == got.detour and mine.error_s_by_bucket == got.error_s_by_bucket


coords = st.tuples(st.floats(51.4, 51.6), st.floats(-0.3, 0.1))


@given(
    origin=coords,
    doors=st.lists(coords, min_size=1, max_size=30),
    hour=st.integers(0, 23),
    errors=st.booleans(),
)
def test_arrivals_follow_the_route_and_windows_hold_them(origin, doors, hour, errors):
    knows = learned(
        speed_mps_by_hour={h: 3.0 + h % 5 for h in range(24)},
        error_s_by_bucket={"1": (30.0, 90.0), "2-3": (120.0, 200.0), "11+": (600.0, 900.0)} if errors else {},
    )
    at = AT.replace(hour=hour)
    estimates = estimate_route(
        origin=Point(*origin), at=at, stops=[(k, Point(*d)) for k, d in enumerate(doors)], learned=knows
    )
    assert len(estimates) == len(doors)
    etas = [e.eta for e in estimates]
    assert etas == sorted(etas)
    for e in estimates:
        assert at <= e.window_start <= e.eta <= e.window_end


def test_a_silent_vans_windows_open_earlier_by_the_silence_but_not_before_now():
    at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    estimates = [
        Estimate(1, 1, at + timedelta(minutes=5), at + timedelta(minutes=3), at + timedelta(minutes=8)),
        Estimate(2, 2, at + timedelta(minutes=30), at + timedelta(minutes=25), at + timedelta(minutes=36)),
    ]
    near, far = widened(estimates, timedelta(minutes=10), earliest=at)
    assert near.window_start == at and near.window_end == estimates[0].window_end
    assert far.window_start == at + timedelta(minutes=15)
    assert (far.eta, far.window_end) == (estimates[1].eta, estimates[1].window_end)
