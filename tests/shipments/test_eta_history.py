"""What recorded days teach the ETA: the database read back as days, and
learned_for a driver, per brand and cached."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache

from shipments import drivers, eta_history, services
from shipments.demo_day import World
from shipments.eta_model import DEFAULT_LEARNED
from shipments.eta_scoring import Samples, learn_from_day
from shipments.models import Brand, Driver, EventSource, Stop
from shipments.services import NewEvent

FIRST = dt.date(2026, 11, 2)


@pytest.fixture(autouse=True)
def fresh_memo(settings):
    # The visit follower would set the visits from the pings; here the
    # simulator's own arrivals are written, so the test knows the truth.
    settings.ALERTS_DETECT_ON_PINGS = False
    eta_history.forget()
    cache.clear()
    yield
    eta_history.forget()
    cache.clear()


def record_day(brand: Brand, day, make_shipment) -> None:
    """A simulated day written through the portal's services: parcels,
    the route, the pings, the scans, and the visits the follower keeps."""
    numbers = []
    for stop in sorted(day.stops, key=lambda s: s.sequence):
        number = f"{day.driver}-{stop.stop_id}"
        make_shipment(
            tracking_number=number,
            for_brand=brand,
            destination_lat=stop.door.lat,
            destination_lng=stop.door.lng,
            promised_window_start=stop.promised[0],
            promised_window_end=stop.promised[1],
        )
        numbers.append(number)
    drivers.set_route(brand=brand, driver_ref=day.driver, date=day.day, tracking_numbers=numbers)
    pings = [drivers.Ping(lat=p.lat, lng=p.lng, recorded_at=t) for t, p in day.pings]
    for start in range(0, len(pings), 500):
        drivers.record_locations(brand=brand, driver_ref=day.driver, pings=pings[start : start + 500])
    for number, stop in zip(numbers, sorted(day.stops, key=lambda s: s.sequence), strict=True):
        shipment = brand.shipments.get(tracking_number=number)
        services.record_event(
            shipment_id=shipment.pk,
            event=NewEvent(
                status="delivered", occurred_at=stop.scanned_at, source=EventSource.DRIVER, external_id=f"d-{number}"
            ),
        )
        Stop.objects.filter(shipment=shipment, route__date=day.day).update(
            visit_started_at=stop.arrived_at, visit_left_at=stop.left_at
        )


@pytest.fixture
def london(brand):
    brand.default_timezone = "Europe/London"
    brand.save(update_fields=["default_timezone"])
    return brand


@pytest.fixture
def two_days(london, make_shipment):
    world = World(seed=7, drivers=1, stops=(8, 10))
    days = world.days(FIRST, 2)
    for day in days:
        record_day(london, day, make_shipment)
    return days


def test_recorded_days_read_back_what_happened(london, two_days):
    driver = Driver.objects.get(brand=london)
    got = eta_history.recorded_days(
        driver_ids=[driver.pk], since=FIRST, until=FIRST + dt.timedelta(days=2), tz=eta_history.brand_tz(london)
    )
    assert [(d.driver, d.day) for d in got] == [(d.driver, d.day) for d in two_days]
    for read, wrote in zip(got, two_days, strict=True):
        assert len(read.pings) == len(wrote.pings)
        by_sequence = sorted(wrote.stops, key=lambda s: s.sequence)
        assert [s.sequence for s in read.stops] == [s.sequence for s in by_sequence]
        for mine, theirs in zip(read.stops, by_sequence, strict=True):
            assert mine.arrived_at == theirs.arrived_at
            assert mine.scanned_at == theirs.scanned_at
            assert mine.left_at == theirs.left_at
            assert mine.promised == theirs.promised
            assert mine.door.lat == pytest.approx(theirs.door.lat)


def test_learned_for_teaches_the_drivers_doors_and_roads_from_the_days_before(london, two_days):
    driver = Driver.objects.get(brand=london)
    learned = eta_history.learned_for(driver, on=FIRST + dt.timedelta(days=2))
    truth = Samples()
    for day in two_days:
        learn_from_day(day, truth)
    assert learned.samples > 0
    assert learned.service_s == pytest.approx(sum(truth.service_s) / len(truth.service_s))
    assert learned.detour == pytest.approx(truth.road_m / truth.straight_m)
    assert 1.1 < learned.detour < 1.8
    assert set(learned.speed_mps_by_hour) & {8, 9}


def test_only_days_before_count(london, two_days):
    driver = Driver.objects.get(brand=london)
    # On the second day only the first has happened: it alone teaches.
    second = eta_history.learned_for(driver, on=FIRST + dt.timedelta(days=1))
    first_only = Samples()
    learn_from_day(two_days[0], first_only)
    assert second.service_s == pytest.approx(sum(first_only.service_s) / len(first_only.service_s))
    # On the first day nothing has.
    assert eta_history.learned_for(driver, on=FIRST) == DEFAULT_LEARNED


def test_a_brand_learns_nothing_from_another_brands_days(london, two_days, other_brand):
    stranger = Driver.objects.create(brand=other_brand, ref=two_days[0].driver)
    assert eta_history.learned_for(stranger, on=FIRST + dt.timedelta(days=2)) == DEFAULT_LEARNED


def test_a_new_driver_borrows_the_brands(london, two_days):
    newcomer = Driver.objects.create(brand=london, ref="van-new")
    driver = Driver.objects.get(brand=london, ref=two_days[0].driver)
    on = FIRST + dt.timedelta(days=2)
    borrowed = eta_history.learned_for(newcomer, on=on)
    assert borrowed.samples > 0
    assert borrowed.service_s == pytest.approx(eta_history.learned_for(driver, on=on).service_s)


def test_learned_for_is_read_from_the_cache_after_the_first_time(london, two_days, django_assert_num_queries):
    driver = Driver.objects.select_related("brand").get(brand=london)
    on = FIRST + dt.timedelta(days=2)
    first = eta_history.learned_for(driver, on=on)
    with django_assert_num_queries(0):
        assert eta_history.learned_for(driver, on=on) == first
    # Another process: its own memo is empty, the shared cache still answers.
    eta_history.forget()
    with django_assert_num_queries(0):
        assert eta_history.learned_for(driver, on=on) == first


def test_stops_without_a_door_are_left_out(london, make_shipment):
    shipment = make_shipment(for_brand=london, destination_lat=None, destination_lng=None)
    drivers.set_route(brand=london, driver_ref="van-x", date=FIRST, tracking_numbers=[shipment.tracking_number])
    driver = Driver.objects.get(brand=london, ref="van-x")
    assert (
        eta_history.recorded_days(driver_ids=[driver.pk], since=FIRST, until=FIRST + dt.timedelta(days=1), tz=dt.UTC)
        == []
    )


def test_a_periodic_work_out_fills_the_cache_so_no_recompute_waits(london, two_days, django_assert_num_queries):
    on = FIRST + dt.timedelta(days=2)
    eta_history.work_out(london, on=on)
    driver = Driver.objects.select_related("brand").get(brand=london)
    with django_assert_num_queries(0):
        learned = eta_history.learned_for(driver, on=on)
    assert learned.samples > 0


def test_while_another_process_works_it_out_the_defaults_answer(london, two_days):
    on = FIRST + dt.timedelta(days=2)
    cache.add(f"eta:learned:{london.pk}:{on.isoformat()}:working", 1, 60)
    driver = Driver.objects.get(brand=london)
    assert eta_history.learned_for(driver, on=on) == DEFAULT_LEARNED
    cache.delete(f"eta:learned:{london.pk}:{on.isoformat()}:working")
    assert eta_history.learned_for(driver, on=on).samples > 0


def test_old_days_teach_their_doors_without_their_pings_being_read(london, two_days):
    driver = Driver.objects.get(brand=london)
    got = eta_history.recorded_days(
        driver_ids=[driver.pk],
        since=FIRST,
        until=FIRST + dt.timedelta(days=2),
        tz=eta_history.brand_tz(london),
        pings_since=FIRST + dt.timedelta(days=1),
    )
    assert got[0].pings == [] and len(got[1].pings) == len(two_days[1].pings)
    samples = Samples()
    learn_from_day(got[0], samples)
    assert samples.service_s and samples.seconds_by_hour and samples.road_m == 0


@pytest.fixture
def eager_tasks():
    from tracking_portal.celery import app as celery_app

    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


def test_beat_works_the_history_out_for_brands_with_a_route_today(
    london, two_days, other_brand, make_shipment, eager_tasks, django_assert_num_queries
):
    from shipments.tasks import work_out_eta_history_task

    today = FIRST + dt.timedelta(days=2)
    parcel = make_shipment(for_brand=london, destination_lat=51.5, destination_lng=-0.1)
    drivers.set_route(
        brand=london, driver_ref=two_days[0].driver, date=today, tracking_numbers=[parcel.tracking_number]
    )
    # Another brand's route is of yesterday only: nothing to work out for it.
    theirs = make_shipment(for_brand=other_brand, destination_lat=51.5, destination_lng=-0.1)
    drivers.set_route(
        brand=other_brand,
        driver_ref="van-o",
        date=FIRST + dt.timedelta(days=1),
        tracking_numbers=[theirs.tracking_number],
    )
    morning = dt.datetime.combine(today, dt.time(6, 30), eta_history.brand_tz(london))
    with time_machine.travel(morning, tick=False):
        assert eta_history.brands_due(now=morning) == [london.pk]
        assert work_out_eta_history_task() == 1
        assert cache.get(f"eta:learned:{london.pk}:{today.isoformat()}") is not None
        assert cache.get(f"eta:learned:{other_brand.pk}:{FIRST + dt.timedelta(days=1)}") is None
        # A recompute reads it, working nothing out itself.
        driver = Driver.objects.select_related("brand").get(brand=london, ref=two_days[0].driver)
        with django_assert_num_queries(0):
            assert eta_history.learned_for(driver).samples > 0
        # Worked out, the brand is due no more until tomorrow.
        assert eta_history.brands_due(now=morning) == []
        assert work_out_eta_history_task() == 0


def test_the_brands_today_is_its_own_time_zone(london, make_shipment):
    # 23:30 UTC on the 1st is 08:30 on the 2nd in Tokyo.
    london.default_timezone = "Asia/Tokyo"
    london.save(update_fields=["default_timezone"])
    parcel = make_shipment(for_brand=london, destination_lat=35.6, destination_lng=139.7)
    drivers.set_route(
        brand=london, driver_ref="van-t", date=dt.date(2026, 11, 2), tracking_numbers=[parcel.tracking_number]
    )
    assert eta_history.brands_due(now=dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC)) == [london.pk]
    assert eta_history.brands_due(now=dt.datetime(2026, 11, 1, 14, 0, tzinfo=dt.UTC)) == []


def test_the_history_task_skips_a_brand_already_worked_out_or_being_worked_out(london, two_days):
    from shipments.tasks import work_out_brand_eta_history_task

    today = FIRST + dt.timedelta(days=2)
    morning = dt.datetime.combine(today, dt.time(6, 30), eta_history.brand_tz(london))
    key = f"eta:learned:{london.pk}:{today.isoformat()}"
    with time_machine.travel(morning, tick=False):
        cache.add(f"{key}:working", 1, 60)
        assert work_out_brand_eta_history_task(london.pk) is False
        assert cache.get(key) is None
        cache.delete(f"{key}:working")
        assert work_out_brand_eta_history_task(london.pk) is True
        assert cache.get(key) is not None
        assert work_out_brand_eta_history_task(london.pk) is False
    assert work_out_brand_eta_history_task(10**9) is False
