"""The computed ETA in the product (shipments/eta.py): one model call per
route on a ping, written beside the brand's promise, dropped once a stop is
done, the page's version moved only when its minutes change, eta_changed
noticed past the threshold, and the recompute debounced."""

import math
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from shipments import drivers, eta, eta_history, eta_model
from shipments import services as shipment_services
from shipments.models import Notice, NoticeKind, Shipment, Stop
from shipments.services import NewEvent

DEST = (51.5034, -0.1276)


def point(metres: float, bearing_deg: float = 90.0) -> tuple[float, float]:
    north = metres * math.cos(math.radians(bearing_deg))
    east = metres * math.sin(math.radians(bearing_deg))
    return DEST[0] + north / 111_195, DEST[1] + east / (111_195 * math.cos(math.radians(DEST[0])))


@pytest.fixture(autouse=True)
def no_history():
    eta_history.forget()
    yield
    eta_history.forget()


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def status(shipment, name, at, external_id=None):
    shipment_services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status=name, occurred_at=at, source="api", external_id=external_id or f"{name}-{at}"),
    )


@pytest.fixture
def van(brand, make_shipment, now):
    """Three parcels out for delivery today, 1, 2 and 3 km east, in order."""
    parcels = []
    for km in (1, 2, 3):
        lat, lng = point(km * 1000)
        shipment = make_shipment(destination_lat=lat, destination_lng=lng)
        status(shipment, "out_for_delivery", now - timedelta(hours=1))
        parcels.append(shipment)
    route = drivers.set_route(
        brand=brand, driver_ref="van-1", date=now.date(), tracking_numbers=[s.tracking_number for s in parcels]
    )
    return route, parcels


def ping(brand, at, metres=0.0):
    lat, lng = point(metres)
    return drivers.record_locations(brand=brand, driver_ref="van-1", pings=[drivers.Ping(lat, lng, at)])


def fresh(shipments):
    return [Shipment.objects.get(pk=s.pk) for s in shipments]


def test_a_ping_estimates_every_stop_ahead_with_one_model_call(brand, van, now):
    route, parcels = van
    with mock.patch.object(eta_model, "estimate_route", wraps=eta_model.estimate_route) as model:
        ping(brand, now)
        eta.recompute_route(route_id=route.pk, now=now)
    assert model.call_count == 1
    assert len(model.call_args.kwargs["stops"]) == 3
    rows = fresh(parcels)
    etas = [row.computed_eta for row in rows]
    assert all(e is not None for e in etas)
    assert etas == sorted(etas) and etas[0] > now
    for row in rows:
        assert row.computed_window_start <= row.computed_eta <= row.computed_window_end
        assert row.computed_from == now
        assert row.computed_at == now
        # The brand's promise is left alone.
        assert row.eta is None and row.promised_window_start is None


def test_best_is_computed_on_the_van_and_the_brands_otherwise(brand, van, now, make_shipment):
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    row = fresh(parcels)[0]
    chosen = eta.best(row, now)
    assert chosen.source == "computed"
    assert (chosen.window_start, chosen.window_end) == (row.computed_window_start, row.computed_window_end)
    # Once the clock overtakes the computed window, the promise is back.
    assert eta.best(row, row.computed_window_end + timedelta(seconds=1)).source == "brand"
    promised = make_shipment(eta=now + timedelta(hours=2))
    assert eta.best(promised, now) == eta.Best(now + timedelta(hours=2), None, None, "brand")


def test_a_scan_drops_the_stops_estimate_and_keeps_the_rest(brand, van, now):
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    status(parcels[0], "delivered", now + timedelta(minutes=4))
    later = now + timedelta(minutes=5)
    ping(brand, later, metres=1000)
    eta.recompute_route(route_id=route.pk, now=later)
    done, second, third = fresh(parcels)
    assert done.computed_eta is None and done.computed_window_end is None
    assert second.computed_from == later and third.computed_from == later
    assert eta.best(done, later).source == "brand"


def test_the_version_moves_only_when_the_shown_minutes_change(brand, van, now):
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    versions = [row.version for row in fresh(parcels)]
    # The same position a moment later: the same minutes, no page refresh.
    eta.recompute_route(route_id=route.pk, now=now + timedelta(seconds=1))
    assert [row.version for row in fresh(parcels)] == versions
    # The van drove 900 m on in a minute: the minutes change.
    ping(brand, now + timedelta(minutes=1), metres=900)
    eta.recompute_route(route_id=route.pk, now=now + timedelta(minutes=1))
    assert all(row.version > was for row, was in zip(fresh(parcels), versions, strict=True))


def test_eta_changed_is_noticed_past_the_threshold_only(brand, van, now, settings):
    settings.ETA_CHANGED_MINUTES = 15
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    # The first estimate, with nothing promised, is what later moves count from.
    assert not Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).exists()
    first = fresh(parcels)[2]
    assert (first.eta_told_start, first.eta_told_end) == (first.computed_window_start, first.computed_window_end)
    # A little later from the same place: a small move, nothing told.
    ping(brand, now + timedelta(minutes=2))
    eta.recompute_route(route_id=route.pk, now=now + timedelta(minutes=2))
    assert not Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).exists()
    # Stuck at the depot for 40 minutes: every window moved past 15 minutes.
    stuck = now + timedelta(minutes=40)
    ping(brand, stuck)
    eta.recompute_route(route_id=route.pk, now=stuck)
    notices = Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).order_by("shipment_id")
    assert [n.shipment_id for n in notices] == [p.pk for p in parcels]
    third = fresh(parcels)[2]
    data = notices.get(shipment=third).data
    assert data["eta_window"] == {
        "start": third.computed_window_start.isoformat(),
        "end": third.computed_window_end.isoformat(),
    }
    assert data["previous_window"]["end"] == first.computed_window_end.isoformat()
    assert data["moved_minutes"] > 15
    # Told once: the same estimate again tells nothing more.
    eta.recompute_route(route_id=route.pk, now=stuck + timedelta(seconds=5))
    assert Notice.objects.filter(kind=NoticeKind.ETA_CHANGED).count() == 3


def test_a_promised_window_is_what_the_first_move_counts_from(brand, make_shipment, now, settings):
    settings.ETA_CHANGED_MINUTES = 15
    lat, lng = point(2000)
    # Promised for the evening; the van is 2 km away this morning.
    shipment = make_shipment(
        destination_lat=lat,
        destination_lng=lng,
        promised_window_start=now + timedelta(hours=6),
        promised_window_end=now + timedelta(hours=8),
    )
    status(shipment, "out_for_delivery", now - timedelta(hours=1))
    route = drivers.set_route(brand=brand, driver_ref="van-1", date=now.date(), tracking_numbers=["LM000001"])
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    [notice] = Notice.objects.filter(shipment=shipment, kind=NoticeKind.ETA_CHANGED)
    assert notice.data["previous_window"]["start"] == (now + timedelta(hours=6)).isoformat()


def test_a_route_without_a_position_is_left_alone(brand, van, now):
    route, parcels = van
    assert eta.recompute_route(route_id=route.pk, now=now) == 0
    assert all(row.computed_eta is None for row in fresh(parcels))
    assert eta.recompute_route(route_id=10**9, now=now) == 0


def test_pings_and_scans_schedule_their_routes(brand, van, now, django_capture_on_commit_callbacks):
    route, parcels = van
    with (
        mock.patch.object(eta, "schedule") as schedule,
        mock.patch.object(eta, "schedule_driver") as schedule_driver,
        django_capture_on_commit_callbacks(execute=True),
    ):
        ping(brand, now)
        status(parcels[0], "delivered", now + timedelta(minutes=1))
    schedule_driver.assert_called_once_with(route.driver_id)
    assert [call.args[0] for call in schedule.call_args_list] == [[route.pk]]
    # A route posted anew (stops reordered) is recomputed too.
    with mock.patch.object(eta, "schedule") as schedule, django_capture_on_commit_callbacks(execute=True):
        drivers.set_route(
            brand=brand,
            driver_ref="van-1",
            date=now.date(),
            tracking_numbers=[p.tracking_number for p in parcels[::-1]],
        )
    assert schedule.call_args.args[0] == [route.pk]


def test_pings_with_eta_off_schedule_nothing(brand, van, now, settings, django_capture_on_commit_callbacks):
    settings.ETA_ON_PINGS = False
    with mock.patch.object(eta, "schedule_driver") as schedule, django_capture_on_commit_callbacks(execute=True):
        ping(brand, now)
    assert not schedule.called


def test_without_a_debounce_a_schedule_recomputes_at_once(brand, van, now, settings):
    settings.ETA_DEBOUNCE_SECONDS = 0
    route, parcels = van
    ping(brand, now)
    assert eta.schedule([route.pk]) == [route.pk]
    assert all(row.computed_eta is not None for row in fresh(parcels))


def test_with_redis_a_route_is_enqueued_once_per_debounce(brand, van, settings):
    from tracking_portal import redis as redis_factory

    client = redis_factory.shared_client()
    if client is None:
        pytest.skip("needs REDIS_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.ETA_DEBOUNCE_SECONDS = 5
    route, _ = van
    client.delete(eta._debounce_key(route.pk))
    from shipments import tasks

    with mock.patch.object(tasks.recompute_route_eta_task, "apply_async") as enqueue:
        assert eta.schedule([route.pk]) == [route.pk]
        assert eta.schedule([route.pk]) == []
    enqueue.assert_called_once_with(args=[route.pk], countdown=5)
    client.delete(eta._debounce_key(route.pk))
    # A driver's pings: one task per debounce, which finds the routes itself.
    client.delete(f"tp:eta:due:driver:{route.driver_id}")
    with mock.patch.object(tasks.recompute_driver_eta_task, "apply_async") as enqueue:
        assert eta.schedule_driver(route.driver_id) is True
        assert eta.schedule_driver(route.driver_id) is False
    enqueue.assert_called_once_with(args=[route.driver_id], countdown=5)
    client.delete(f"tp:eta:due:driver:{route.driver_id}")


def test_a_drivers_task_recomputes_the_drivers_routes(brand, van, now):
    route, parcels = van
    ping(brand, now)
    assert eta.recompute_driver(driver_id=route.driver_id) == 3
    assert all(row.computed_eta is not None for row in fresh(parcels))


def test_at_a_door_the_van_sets_off_after_the_service_time(brand, van, now, settings):
    settings.ETA_CHANGED_MINUTES = 1
    route, parcels = van
    ping(brand, now)
    eta.recompute_route(route_id=route.pk, now=now)
    # The driver is at the first door, its scan still to come.
    arrived = now + timedelta(minutes=3)
    Stop.objects.filter(route=route, shipment=parcels[0]).update(visit_started_at=arrived)
    ping(brand, arrived + timedelta(seconds=30), metres=1000)
    eta.recompute_route(route_id=route.pk, now=arrived + timedelta(seconds=30))
    first, second, _ = fresh(parcels)
    leaves = arrived + timedelta(seconds=eta_model.DEFAULT_LEARNED.service_s)
    assert (first.computed_window_start, first.computed_window_end) == (arrived, leaves)
    assert second.computed_eta > leaves
    # The window closing on the driver at the door is no news.
    assert not Notice.objects.filter(shipment=first, kind=NoticeKind.ETA_CHANGED).exists()
