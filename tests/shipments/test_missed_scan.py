"""missed_scan from a driver's pings (shipments/visits.py through
drivers.record_locations): opened at the leaving ping's own time, not for a
scanned or passing stop, resolved by a scan that arrives late, the same in
a replayed day as in a live one, a brand's own thresholds, the setting that
turns it off, and the ping path's queries."""

import math
import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from shipments import alerts, drivers, visits
from shipments import services as shipment_services
from shipments.alert_models import ActivityAction, BrandAlertSettings, Resolution
from shipments.alert_rules import distance_m
from shipments.models import Alert, AlertActivity, AlertState, Notice, NoticeKind, Stop

from ..conftest import T0, event

SECOND = timedelta(seconds=1)
DEST = (51.5034, -0.1276)


def point(metres: float, bearing_deg: float = 90.0) -> tuple[float, float]:
    north = metres * math.cos(math.radians(bearing_deg))
    east = metres * math.sin(math.radians(bearing_deg))
    return DEST[0] + north / 111_195, DEST[1] + east / (111_195 * math.cos(math.radians(DEST[0])))


def ping(metres: float, seconds: float, bearing_deg: float = 90.0) -> drivers.Ping:
    lat, lng = point(metres, bearing_deg)
    return drivers.Ping(lat=lat, lng=lng, recorded_at=T0 + timedelta(seconds=seconds))


def send(brand, *pings, ref="van-1"):
    return drivers.record_locations(brand=brand, driver_ref=ref, pings=list(pings))


def stop_without_scan():
    """Arrive, wait three minutes at 20 m, drive off to 600 m."""
    return [
        ping(800, 0),
        ping(20, 60),
        ping(20, 120),
        ping(20, 180),
        ping(20, 240),
        ping(200, 250),
        ping(600, 270),
    ]


@pytest.fixture
def on_route(brand, make_shipment):
    """A shipment out for delivery, the van's first stop today."""

    def make(ref="van-1", **fields):
        shipment = make_shipment(**fields)
        shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", -60))
        drivers.set_route(brand=brand, driver_ref=ref, date=T0.date(), tracking_numbers=[shipment.tracking_number])
        return shipment

    return make


def missed(shipment):
    return list(Alert.objects.filter(shipment=shipment, kind="missed_scan"))


def test_a_stop_left_without_a_scan_opens_one_alert_at_the_leaving_ping(brand, on_route):
    shipment = on_route()
    for p in stop_without_scan():
        send(brand, p)
    [alert] = missed(shipment)
    assert alert.state == AlertState.OPEN
    assert alert.opened_at == T0 + timedelta(seconds=270)
    assert alert.detail == {
        "stop_sequence": 1,
        "route_date": T0.date().isoformat(),
        "visit_started_at": (T0 + timedelta(seconds=60)).isoformat(),
        "visit_left_at": (T0 + timedelta(seconds=270)).isoformat(),
        "left_distance_m": 600,
    }
    # Factual, and nothing of where the driver or the recipient is.
    assert not {"lat", "lng", "address", "destination_line1"} & set(alert.detail)
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1
    assert list(AlertActivity.objects.filter(alert=alert).values_list("action", "user")) == [
        (ActivityAction.OPENED, None)
    ]
    stop = Stop.objects.get(shipment=shipment)
    assert stop.visit_started_at == T0 + timedelta(seconds=60)
    assert stop.visit_near_at == T0 + timedelta(seconds=180)
    assert stop.visit_left_at == T0 + timedelta(seconds=270)
    # More pings far away change nothing more.
    send(brand, ping(900, 400))
    assert len(missed(shipment)) == 1


def test_the_dwell_and_the_leave_just_under_and_just_over(brand, on_route):
    short = on_route(ref="short")
    send(brand, ping(20, 0), ping(20, 119), ping(600, 130), ref="short")
    assert missed(short) == []
    near = on_route(ref="near")
    send(brand, ping(20, 0), ping(20, 120), ping(299, 130), ref="near")
    assert missed(near) == []
    send(brand, ping(301, 140), ref="near")
    assert [a.opened_at for a in missed(near)] == [T0 + timedelta(seconds=140)]


def test_near_just_inside_and_just_outside(brand, on_route):
    outside = on_route(ref="outside")
    send(brand, ping(77, 0), ping(77, 200), ping(600, 210), ref="outside")
    assert missed(outside) == []
    inside = on_route(ref="inside")
    send(brand, ping(73, 0), ping(73, 200), ping(600, 210), ref="inside")
    assert len(missed(inside)) == 1


def test_a_scan_during_the_visit_means_no_alert(brand, on_route):
    shipment = on_route()
    pings = stop_without_scan()
    send(brand, *pings[:4])
    shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 3))
    send(brand, *pings[4:])
    assert missed(shipment) == []


def test_a_late_scan_from_before_the_leave_resolves_it(brand, on_route):
    shipment = on_route()
    send(brand, *stop_without_scan())
    [alert] = missed(shipment)
    # The scan was made at the door (3 min) and uploaded an hour later.
    shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 3))
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + timedelta(hours=1)) == (0, 1)
    alert.refresh_from_db()
    assert (alert.state, alert.resolution, alert.resolved_by) == (AlertState.RESOLVED, Resolution.RULE, None)
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_RESOLVED).count() == 1
    assert list(AlertActivity.objects.filter(alert=alert).values_list("action", "data")) == [
        (ActivityAction.OPENED, {}),
        (ActivityAction.RESOLVED, {"reason": Resolution.RULE}),
    ]


def test_a_failed_attempt_resolves_it_and_an_old_scan_does_not(brand, make_shipment):
    shipment = make_shipment()
    # Yesterday's failed attempt, today out again.
    shipment_services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", -24 * 60))
    shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", -60))
    drivers.set_route(brand=brand, driver_ref="van-1", date=T0.date(), tracking_numbers=[shipment.tracking_number])
    send(brand, *stop_without_scan())
    assert len(missed(shipment)) == 1
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + timedelta(minutes=30)) == (0, 0)
    shipment_services.record_event(shipment_id=shipment.pk, event=event("failed_attempt", 30))
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + timedelta(minutes=31)) == (0, 1)


def test_a_passing_van_opens_nothing(brand, on_route):
    shipment = on_route()
    # 6 m/s, a ping every 5 s, from 600 m before the door to 600 m past it.
    send(brand, *[ping(abs(600 - 30 * i), 5 * i, 90 if i < 20 else 270) for i in range(41)])
    assert missed(shipment) == []
    stop = Stop.objects.get(shipment=shipment)
    assert (stop.visit_started_at, stop.visit_near_at, stop.visit_left_at) == (None, None, None)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_noisy_parked_van_opens_exactly_one_alert(brand, on_route, seed):
    """Parked 40-70 m away for ten minutes, each fix 10-30 m off, a ping
    every 5-15 s, sent in batches of three; then it drives off."""
    shipment = on_route()
    rng = random.Random(seed)
    parked, bearing = rng.uniform(40, 70), rng.uniform(0, 360)
    px, py = parked * math.cos(math.radians(bearing)), parked * math.sin(math.radians(bearing))
    pings, seconds = [], 0.0
    while seconds < 600:
        noise, angle = rng.uniform(10, 30), rng.uniform(0, 2 * math.pi)
        x, y = px + noise * math.cos(angle), py + noise * math.sin(angle)
        pings.append(ping(math.hypot(x, y), seconds, math.degrees(math.atan2(x, y))))
        seconds += rng.uniform(5, 15)
    for i in range(1, 40):
        pings.append(ping(parked + 100 * i, seconds + 10 * i, bearing))
    for start in range(0, len(pings), 3):
        send(brand, *pings[start : start + 3])
    assert len(missed(shipment)) == 1
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1


def test_pings_out_of_order_never_fake_a_leave_or_move_the_visit_back(brand, on_route):
    shipment = on_route()
    send(brand, ping(20, 0), ping(20, 150))
    before = Stop.objects.values("visit_started_at", "visit_near_at", "visit_left_at").get(shipment=shipment)
    # Far pings from before the newest one, arriving late.
    send(brand, ping(900, 100), ping(900, 149))
    assert missed(shipment) == []
    assert Stop.objects.values("visit_started_at", "visit_near_at", "visit_left_at").get(shipment=shipment) == before
    # Within one batch, the order they are sent in does not matter.
    send(brand, ping(600, 200), ping(20, 190))
    assert [a.opened_at for a in missed(shipment)] == [T0 + timedelta(seconds=200)]


def test_a_replayed_day_opens_what_a_live_one_does(brand, on_route):
    live, replayed = on_route(ref="live"), on_route(ref="replayed")
    for p in stop_without_scan():
        send(brand, p, ref="live")
    send(brand, *reversed(stop_without_scan()), ref="replayed")
    [a], [b] = missed(live), missed(replayed)
    assert (a.opened_at, a.detail) == (b.opened_at, b.detail)


def test_a_brands_own_thresholds_apply_and_another_brand_keeps_the_defaults(
    brand, on_route, other_brand, make_shipment
):
    BrandAlertSettings.objects.create(brand=brand, missed_scan_dwell_seconds=30, missed_scan_leave_m=150)
    mine = on_route()
    theirs = make_shipment(for_brand=other_brand, tracking_number="OTHER1")
    shipment_services.record_event(shipment_id=theirs.pk, event=event("out_for_delivery", -60))
    drivers.set_route(brand=other_brand, driver_ref="van-1", date=T0.date(), tracking_numbers=["OTHER1"])
    short_stop = [ping(20, 0), ping(20, 31), ping(160, 40), ping(400, 50)]
    send(brand, *short_stop)
    send(other_brand, *short_stop)
    assert [a.opened_at for a in missed(mine)] == [T0 + timedelta(seconds=40)]
    assert missed(theirs) == []


def test_detection_can_be_turned_off(brand, on_route, settings):
    settings.ALERTS_DETECT_ON_PINGS = False
    shipment = on_route()
    send(brand, *stop_without_scan())
    assert missed(shipment) == []
    assert Stop.objects.get(shipment=shipment).visit_started_at is None


def test_only_the_stops_still_to_scan_are_watched(brand, make_shipment):
    done = make_shipment()
    shipment_services.record_event(shipment_id=done.pk, event=event("delivered", -30))
    nowhere = make_shipment(destination_lat=None, destination_lng=None)
    drivers.set_route(
        brand=brand,
        driver_ref="van-1",
        date=T0.date(),
        tracking_numbers=[done.tracking_number, nowhere.tracking_number],
    )
    send(brand, *stop_without_scan())
    assert not Alert.objects.filter(kind="missed_scan").exists()


def test_another_days_route_is_not_watched(brand, make_shipment):
    shipment = make_shipment()
    shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", -60))
    drivers.set_route(
        brand=brand, driver_ref="van-1", date=T0.date() + timedelta(days=3), tracking_numbers=[shipment.tracking_number]
    )
    send(brand, *stop_without_scan())
    assert missed(shipment) == []


def test_the_ping_path_reads_one_query_more_and_writes_only_on_a_change(brand, on_route, settings):
    on_route()
    send(brand, ping(2000, 0))

    def queries(seconds, metres=2000):
        with CaptureQueriesContext(connection) as ctx:
            send(brand, ping(metres, seconds))
        return [q["sql"] for q in ctx.captured_queries]

    settings.ALERTS_DETECT_ON_PINGS = False
    without = queries(10)
    settings.ALERTS_DETECT_ON_PINGS = True
    with_detection = queries(20)
    assert len(with_detection) == len(without) + 1
    # Entering the stop's near distance writes the stop once; staying does not.
    entering = queries(30, metres=10)
    assert len(entering) == len(without) + 2
    assert len(queries(40, metres=10)) == len(without) + 1


def test_one_open_alert_per_stop_however_often_it_is_opened(brand, on_route):
    shipment = on_route()
    send(brand, *stop_without_scan())
    again = alerts.open_missed_scan(
        shipment_id=shipment.pk, now=T0 + timedelta(minutes=9), visit_started_at=T0, detail={}
    )
    assert again is None
    assert len(missed(shipment)) == 1


@pytest.mark.parametrize("latitude", [0.0, 51.5, 69.6, -54.8])
def test_the_ping_grid_never_leaves_out_a_ping_within_the_near_distance(latitude):
    rng = random.Random(latitude)
    pings = [
        drivers.Ping(lat=latitude + rng.uniform(-0.01, 0.01), lng=rng.uniform(-0.02, 0.02), recorded_at=T0)
        for _ in range(400)
    ]
    near_m = 75.0
    grid = visits._PingGrid(pings, near_m)
    found = 0
    for _ in range(200):
        point = (latitude + rng.uniform(-0.01, 0.01), rng.uniform(-0.02, 0.02))
        within = [i for i, p in enumerate(pings) if distance_m(p.lat, p.lng, *point) <= near_m]
        candidates = grid.candidates(point)
        assert set(within) <= set(candidates)
        assert candidates == sorted(candidates)
        found += len(within)
    assert found > 50


def two_doors(brand, make_shipment, apart_m):
    """Two parcels out for delivery on the van's route, their doors this far apart (north)."""
    here, other = make_shipment(), make_shipment(destination_lat=DEST[0] + apart_m / 111_195)
    for s in (here, other):
        shipment_services.record_event(shipment_id=s.pk, event=event("out_for_delivery", -60))
    drivers.set_route(
        brand=brand, driver_ref="van-1", date=T0.date(), tracking_numbers=[other.tracking_number, here.tracking_number]
    )
    return here, other


def test_waiting_at_a_neighbours_door_is_not_a_missed_scan_at_this_one(brand, make_shipment):
    here, next_door = two_doors(brand, make_shipment, 40)
    # Parked halfway between the two doors (20 m north of this one, the
    # neighbour's 40 m north) for four minutes, the neighbour's parcel
    # scanned a minute before driving off.
    send(brand, ping(20, 0, 0), ping(20, 60, 0), ping(20, 130, 0), ping(20, 180, 0))
    shipment_services.record_event(shipment_id=next_door.pk, event=event("delivered", 3))
    send(brand, ping(20, 230, 0), ping(600, 240, 0))
    assert missed(here) == []
    assert missed(next_door) == []


def test_waiting_at_this_door_then_scanning_next_door_is_a_missed_scan_here(brand, make_shipment):
    here, next_door = two_doors(brand, make_shipment, 40)
    # Four minutes at this door (5 m from it, 35 m from the neighbour's),
    # then a walk next door, its parcel scanned half a minute before
    # driving off: the dwell was this door's, and it has no scan.
    send(brand, ping(5, 0, 0), ping(5, 60, 0), ping(5, 120, 0), ping(5, 180, 0), ping(5, 240, 0))
    send(brand, ping(38, 250, 0), ping(39, 260, 0))
    shipment_services.record_event(shipment_id=next_door.pk, event=event("delivered", 4.5))
    send(brand, ping(39, 290, 0), ping(600, 300, 0))
    assert len(missed(here)) == 1
    assert missed(next_door) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_van_noisy_around_the_midpoint_is_still_the_neighbours_visit(brand, make_shipment, seed):
    rng = random.Random(seed)
    here, next_door = two_doors(brand, make_shipment, 40)
    # Halfway between the doors, GPS noise of a few metres: the time nearer
    # this door stays short of the dwell.
    noisy = [ping(20 + rng.gauss(0, 4), 10 * i, rng.gauss(0, 8)) for i in range(24)]
    send(brand, *noisy)
    shipment_services.record_event(shipment_id=next_door.pk, event=event("delivered", 3.8))
    send(brand, ping(20, 240, 0), ping(600, 250, 0))
    assert missed(here) == []


def test_a_long_wait_after_the_neighbours_scan_is_a_missed_scan_here(brand, make_shipment):
    here, next_door = two_doors(brand, make_shipment, 40)
    send(brand, ping(20, 0), ping(20, 60))
    shipment_services.record_event(shipment_id=next_door.pk, event=event("delivered", 1))
    send(brand, ping(20, 120), ping(20, 200), ping(600, 240))
    assert len(missed(here)) == 1


def test_the_watched_stops_query_returns_what_its_orm_twin_does(brand, make_shipment, other_brand):
    """In a visit, near the pings, far, delivered, on another day's route,
    with and without the brand's own near distance."""
    rng = random.Random(7)
    numbers = []
    for i in range(30):
        lat, lng = point(rng.uniform(0, 900), rng.uniform(0, 360))
        s = make_shipment(destination_lat=lat, destination_lng=lng)
        shipment_services.record_event(
            shipment_id=s.pk, event=event("delivered" if i % 7 == 0 else "out_for_delivery", -60)
        )
        numbers.append(s.tracking_number)
    drivers.set_route(brand=brand, driver_ref="van-1", date=T0.date(), tracking_numbers=numbers[:20])
    drivers.set_route(
        brand=brand, driver_ref="van-1", date=T0.date() - timedelta(days=1), tracking_numbers=numbers[15:]
    )
    drivers.set_route(brand=brand, driver_ref="van-1", date=T0.date() + timedelta(days=5), tracking_numbers=numbers[:5])
    Stop.objects.filter(shipment__tracking_number__in=numbers[2:6]).update(visit_started_at=T0)
    Stop.objects.filter(shipment__tracking_number=numbers[3]).update(visit_left_at=T0 + timedelta(minutes=3))
    driver = drivers.Driver.objects.get(ref="van-1")
    batch = [ping(120, 0), ping(300, 10, 200), ping(40, 20, 45)]
    for own in (None, 200):
        if own:
            BrandAlertSettings.objects.create(brand=brand, missed_scan_near_m=own)
        written = [tuple(visits._row_converters()(row)) for row in _raw_watched(driver, batch)]
        assert written == visits.watched_rows_orm(driver, batch)
        assert len(written) >= 3


def _raw_watched(driver, batch):
    with connection.cursor() as cursor:
        cursor.execute(visits._watched_sql(connection.vendor), visits._watched_params(driver, batch))
        return cursor.fetchall()


def test_a_scan_at_a_door_beyond_the_near_distance_does_not_take_the_visit(brand, make_shipment):
    here, down_the_road = two_doors(brand, make_shipment, 140)
    # Three minutes here without a scan, then on to the next door 140 m
    # away (still short of leaving), scanned there, then away.
    send(brand, ping(10, 0), ping(10, 60), ping(10, 180), ping(140, 200, 0))
    shipment_services.record_event(shipment_id=down_the_road.pk, event=event("delivered", 3.5))
    send(brand, ping(140, 215, 0), ping(400, 230, 0))
    assert len(missed(here)) == 1


def test_a_route_posted_again_mid_visit_keeps_the_visit(brand, on_route, make_shipment):
    """The driver's app reposts the day's route (a stop added) while the van
    waits at a door: the visit goes on, and leaving without a scan is still
    a missed scan."""
    shipment = on_route()
    extra = make_shipment(tracking_number="LM-EXTRA")
    first, *rest = stop_without_scan()
    send(brand, first, *rest[:3])
    drivers.set_route(
        brand=brand,
        driver_ref="van-1",
        date=T0.date(),
        tracking_numbers=[extra.tracking_number, shipment.tracking_number],
    )
    stop = Stop.objects.get(shipment=shipment)
    assert (stop.sequence, stop.visit_started_at) == (2, T0 + timedelta(seconds=60))
    for p in rest[3:]:
        send(brand, p)
    [alert] = missed(shipment)
    assert alert.detail["stop_sequence"] == 2
