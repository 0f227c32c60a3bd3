"""The ETA's backtest: scoring, no future in the past, the simulator's days
against the issue's targets, and the command on simulated and recorded days."""

import copy
import datetime as dt
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shipments.demo_day import Van, World
from shipments.eta_model import DEFAULT_LEARNED as NO_HISTORY
from shipments.eta_model import Point, point_distance_m
from shipments.eta_scoring import (
    Cell,
    Day,
    DayStop,
    Row,
    backtest,
    beats,
    interval_score,
    moments,
    replay,
    score,
)
from tests.shipments.test_eta_history import FIRST, record_day

T = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def test_score_by_bucket():
    rows = [
        Row("model", 1, 60.0, True, 600.0, 600.0),
        Row("model", 1, -180.0, False, 300.0, 300.0 + 20 * 30),
        Row("model", 5, 600.0, True, 1200.0, 1200.0),
    ]
    cells = score(rows)
    near = cells[("model", "1")]
    assert near.count == 2
    assert near.mae_min == pytest.approx(2.0)
    assert near.p90_min == pytest.approx((60 + 0.9 * 120) / 60)
    assert near.inside == 0.5
    assert near.width_min == pytest.approx(7.5)
    assert near.interval_min == pytest.approx((600 + 900) / 2 / 60)
    assert cells[("model", "4-10")].mae_min == pytest.approx(10.0)
    assert ("model", "2-3") not in cells


def test_interval_score_charges_a_miss_twenty_times_its_distance():
    assert interval_score(T, T + timedelta(minutes=10), T + timedelta(minutes=5)) == 600
    assert interval_score(T, T + timedelta(minutes=10), T + timedelta(minutes=11)) == 600 + 20 * 60
    assert interval_score(T, T + timedelta(minutes=10), T - timedelta(minutes=1)) == 600 + 20 * 60


def test_beats_compares_each_figure():
    rows = [Row("model", 1, 60.0, True, 600.0, 600.0), Row("promised", 1, 600.0, True, 7200.0, 7200.0)]
    won = beats(score(rows), "promised")["1"]
    assert won == {"mae_min": True, "p90_min": True, "inside": False, "width_min": True, "interval_min": True}


def tiny_day() -> Day:
    """Two doors due north of the depot, a ping a minute, a van at 5 m/s."""
    depot = Point(51.5, -0.12)
    doors = [Point(51.509, -0.12), Point(51.518, -0.12)]  # ~1 km legs
    stops = [
        DayStop(1, 1, doors[0], T + timedelta(seconds=200), T + timedelta(seconds=300), T + timedelta(seconds=320)),
        DayStop(2, 2, doors[1], T + timedelta(seconds=520), T + timedelta(seconds=600), T + timedelta(seconds=640)),
    ]
    stops[0].promised = (T, T + timedelta(hours=2))
    pings = [(T + timedelta(seconds=60 * k), Point(51.5 + 0.0027 * k, -0.12)) for k in range(10)]
    return Day(driver="v", day=T.date(), tz=UTC, depot=depot, stops=stops, pings=pings)


def test_replay_scores_only_stops_not_yet_reached_and_counts_them_from_the_next():
    day = tiny_day()
    rows = replay(day, NO_HISTORY, every_s=60)
    # Pings before the last arrival (520 s): 0, 60, ..., 480 s.
    assert len(moments(day, 60)) == 9
    model = [r for r in rows if r.method == "model"]
    # Stop 1 is ahead at 0, 60, 120, 180 s (4 moments, 2 stops each);
    # then stop 2 alone, as the next, at 240 .. 480 s (5 moments).
    assert len(model) == 4 * 2 + 5
    assert [r.stops_ahead for r in model[-5:]] == [1] * 5
    promised = [r for r in rows if r.method == "promised"]
    assert len(promised) == 4 and all(r.inside for r in promised)
    assert promised[0].error_s == (day.stops[0].arrived_at - (T + timedelta(hours=1))).total_seconds()


def test_the_constant_baseline_promises_half_an_hour():
    rows = replay(tiny_day(), NO_HISTORY, every_s=60)
    assert {r.width_s for r in rows if r.method == "constant"} == {1800.0}


def test_no_future_leaks_into_the_past():
    days = World(seed=3, drivers=2, stops=(10, 14)).days(FIRST, 3)
    before = backtest(days, warm_up_days=0)
    # A wild fourth day (doors of an hour, a van at walking pace) changes
    # nothing that was estimated on the three before it.
    wild = copy.deepcopy(days[-1])
    wild.day = FIRST + dt.timedelta(days=3)
    for stop in wild.stops:
        stop.scanned_at = stop.left_at = stop.arrived_at + timedelta(hours=1)
    after = backtest([*days, wild], warm_up_days=0)
    assert after[: len(before)] == before
    assert len(after) > len(before)


@pytest.fixture(scope="module")
def simulated_scores():
    days = World(seed=11, drivers=4).days(FIRST, 6)
    return score(backtest(days))


@pytest.mark.parametrize("near", ["1", "2-3"])
def test_on_the_simulators_days_the_near_stops_meet_the_targets(simulated_scores, near):
    cell = simulated_scores[("model", near)]
    assert cell.mae_min <= 5.0
    assert cell.inside >= 0.80
    assert cell.width_min <= 30.0


@pytest.mark.parametrize("baseline", ["promised", "constant"])
def test_on_the_simulators_days_the_model_beats_the_baselines_error_on_every_row(simulated_scores, baseline):
    won = beats(simulated_scores, baseline)
    assert set(won) == {"1", "2-3", "4-10", "11+"}
    for figures in won.values():
        assert figures["mae_min"] and figures["p90_min"]
    for near in ("1", "2-3", "4-10"):
        assert won[near]["width_min"] and won[near]["interval_min"]


def test_the_command_prints_the_table_and_checks_the_targets(db):
    out = io.StringIO()
    call_command("eta_backtest", "--simulate", "2", "--drivers", "2", "--no-recorded", "--check", stdout=out)
    text = out.getvalue()
    assert "| 1 | model |" in text and "| 11+ | promised |" in text
    assert "Targets (1-3 stops ahead" in text and ": met" in text


@pytest.mark.parametrize(
    "arguments",
    [["--simulate", "-1"], ["--every", "0"], ["--check"], ["--brand", "nobody"]],
)
def test_the_command_refuses_bad_arguments(db, arguments):
    with pytest.raises(CommandError):
        call_command("eta_backtest", *arguments, stdout=io.StringIO())


def test_the_command_replays_the_portals_recorded_days(brand, make_shipment, settings, time_machine):
    settings.ALERTS_DETECT_ON_PINGS = False
    brand.default_timezone = "Europe/London"
    brand.save(update_fields=["default_timezone"])
    for day in World(seed=5, drivers=1, stops=(8, 9)).days(FIRST, 2):
        record_day(brand, day, make_shipment)
    time_machine.move_to(datetime(2026, 11, 5, 12, 0, tzinfo=UTC))
    out = io.StringIO()
    call_command("eta_backtest", "--brand", brand.slug, stdout=out)
    text = out.getvalue()
    assert f"Recorded: {brand.slug}, 2 driver-days" in text
    assert "| 1 | model |" in text and "| 1 | promised |" in text


def test_the_simulated_days_vary_as_real_ones_do():
    world = World(seed=4, drivers=3)
    days = world.days(FIRST, 4)
    again = World(seed=4, drivers=3).days(FIRST, 4)
    assert [(d.driver, [s.arrived_at for s in d.stops]) for d in days] == [
        (d.driver, [s.arrived_at for s in d.stops]) for d in again
    ]
    services = [(s.left_at - s.arrived_at).total_seconds() for d in days for s in d.stops]
    assert min(services) < 90 and max(services) > 300
    # Some days a driver takes two stops the other way round.
    swapped = [d for d in days if d.driven != [s.stop_id for s in sorted(d.stops, key=lambda s: s.sequence)]]
    assert 0 < len(swapped) < len(days)
    # Traffic: the morning peak is slower than late morning.
    assert world.traffic(datetime(2026, 11, 3, 8, 30, tzinfo=UTC)) < world.traffic(
        datetime(2026, 11, 3, 10, 30, tzinfo=UTC)
    )
    # The pings are noisy: a parked van's fixes scatter around its door.
    day = days[0]
    stop = day.stops[0]
    parked = [p for t, p in day.pings if stop.arrived_at < t < stop.left_at]
    assert parked and len({(p.lat, p.lng) for p in parked}) == len(parked)


def test_the_live_van_reaches_each_door_by_a_road_longer_than_the_line():
    van = Van(World(seed=2, drivers=1), Point(51.4966, -0.1390))
    door = Point(51.5050, -0.1300)
    straight = point_distance_m(van.position, door)
    fixes = van.drive(door, datetime(2026, 11, 3, 10, 0, tzinfo=UTC), step_s=3.0)
    driven = sum(f.speed_mps * f.seconds for f in fixes)
    assert 1.1 * straight < driven < 1.6 * straight
    assert all(f.seconds <= 3.0 + 1e-9 for f in fixes)
    assert point_distance_m(fixes[-1].point, door) < 60
    assert van.position == door
    # A test's day: a few fixes a leg, whatever the distance.
    assert len(van.drive(Point(51.51, -0.12), datetime(2026, 11, 3, 10, 0, tzinfo=UTC), step_s=0, steps=5)) == 5
    stay = van.stand(120.0, step_s=5.0)
    assert len(stay) == 24 and all(f.speed_mps == 0 for f in stay)


def test_fair_rows_give_each_side_the_others_width_around_its_own_estimate():
    day = tiny_day()
    rows = replay(day, NO_HISTORY, every_s=60, calibration={"constant": {"1": (60.0, 120.0)}, "promised": {}})
    at_moment = rows
    model = [r for r in at_moment if r.method == "model"]
    constant = [r for r in at_moment if r.method == "constant"]
    # Same estimates, windows swapped: the constant's estimate with the
    # model's width, the model's estimate with the constant's half hour.
    at_model_width = [r for r in at_moment if r.method == "constant:model-width"]
    model_at_theirs = [r for r in at_moment if r.method == "model:constant-width"]
    assert [r.width_s for r in at_model_width] == [r.width_s for r in model]
    assert [r.error_s for r in at_model_width] == [r.error_s for r in constant]
    assert {r.width_s for r in model_at_theirs} == {1800.0}
    assert [r.error_s for r in model_at_theirs] == [r.error_s for r in model]
    # Calibrated: the constant's own sides on bucket 1 (3 minutes wide,
    # unless the moment cuts its start); no sides yet, its own window.
    calibrated = [r for r in at_moment if r.method == "constant:calibrated"]
    near = [r.width_s for r in calibrated if r.stops_ahead == 1]
    assert max(near) == 180.0 and min(near) > 0
    assert {r.width_s for r in calibrated if r.stops_ahead == 2} == {1800.0}
    promised = [r for r in at_moment if r.method == "promised:calibrated"]
    assert promised and {r.width_s for r in promised} == {7200.0}


def test_a_baseline_is_calibrated_from_its_own_errors_of_the_newest_days():
    from shipments.eta_scoring import ERROR_DAYS, History

    days = World(seed=3, drivers=2, stops=(10, 14)).days(FIRST, ERROR_DAYS + 2)
    history = History()
    for day in sorted(days, key=lambda d: (d.day, d.driver)):
        history.add(day, replay(day, history.learned(day.driver), every_s=120))
    assert len(history.errors_by_day["constant"]) == ERROR_DAYS
    assert min(history.errors_by_day["model"]) == FIRST + dt.timedelta(days=2)
    sides = history.calibration()["constant"]
    assert {"1", "2-3", "4-10"} <= set(sides)
    assert all(early >= 0 and late > 0 for early, late in sides.values())
    # The model's windows come from its own errors, not the baseline's.
    assert history.learned("").error_s_by_bucket != sides


def test_the_fair_table_names_the_winner_of_each_contest():
    from shipments.eta_fair import contests, fair_table, losses

    def cell(inside, width):
        return Cell(count=10, mae_min=1.0, p90_min=2.0, inside=inside, width_min=width, interval_min=width + 1)

    cells = {
        ("model", "1"): cell(0.90, 6),
        ("constant", "1"): cell(1.0, 30),
        ("constant:calibrated", "1"): cell(0.88, 8),
        ("constant:model-width", "1"): cell(0.85, 6),
        ("model:constant-width", "1"): cell(1.0, 30),
    }
    row = contests(cells, "constant", "1")
    assert [c.winner for c in row] == ["model", "model", "model", "model", "tie"]
    assert contests(cells, "promised", "1") is None
    assert "| 1 | constant | 90% / 88% model | 6 / 8 model |" in fair_table(cells)
    assert losses(cells) == ["1 vs constant: inside at the baseline's width (tie)"]


@pytest.mark.parametrize("baseline", ["promised", "constant"])
def test_at_equal_width_the_model_holds_more_arrivals_on_every_row(simulated_scores, baseline):
    from shipments.eta_fair import COLUMNS, contests

    for b in ("1", "2-3", "4-10", "11+"):
        by_column = {c.column: c for c in contests(simulated_scores, baseline, b)}
        assert by_column[COLUMNS[3]].winner == "model", (b, by_column[COLUMNS[3]])
        # At a half-hour or two-hour width both may hold every arrival.
        assert by_column[COLUMNS[4]].winner in ("model", "tie"), (b, by_column[COLUMNS[4]])
        # Calibrated as the model's is, the baseline's window is no better.
        assert by_column[COLUMNS[2]].winner in ("model", "tie"), (b, by_column[COLUMNS[2]])
