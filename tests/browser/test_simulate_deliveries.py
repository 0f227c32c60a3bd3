"""simulate_deliveries against a running portal (the live uvicorn of
tests/browser): a round drives the route through the API, and the demo
day's faults open alerts as they happen (a stop left without a scan, a
parcel running late) beside load_demo's parcel stuck at the depot."""

import io

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from shipments.management.commands import simulate_deliveries
from shipments.models import Alert, AlertState, ApiKey, Driver, LocationPing, Shipment, Stop
from shipments.statuses import Status

from ..notifications.conftest import eager_celery  # noqa: F401 (a fixture)


@pytest.fixture
def demo_clock(monkeypatch, eager_celery):  # noqa: F811
    """The demo day's waits pass at once: the clock (the portal's too, in
    this process) jumps by them. Tasks run in-process, as in `make run`
    without REDIS_URL, so the alerts after each event are evaluated."""
    with time_machine.travel(timezone.now(), tick=True) as traveller:
        monkeypatch.setattr(simulate_deliveries, "pause", traveller.shift)
        yield traveller


def alerts_of(number):
    return {(a.kind, a.state) for a in Alert.objects.filter(shipment__tracking_number=number)}


def test_a_round_drives_the_route_through_the_api(asgi_server, settings, tmp_path, demo_clock):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_demo", stdout=io.StringIO())
    on_van_before = set(
        Shipment.objects.filter(status=Status.OUT_FOR_DELIVERY).values_list("tracking_number", flat=True)
    )
    out = io.StringIO()
    call_command("simulate_deliveries", base_url=asgi_server, interval=0, rounds=1, stdout=out)

    simulated = Shipment.objects.filter(tracking_number__startswith="SIM").order_by("tracking_number")
    assert simulated.count() == 3
    failing, unscanned, late = simulated.values_list("tracking_number", flat=True)
    # Everything that was on the van has had its attempt: one failed, one
    # left at the door without a scan, the rest delivered with proof.
    attempted = Shipment.objects.filter(
        tracking_number__in=on_van_before | set(simulated.values_list("tracking_number", flat=True))
    )
    assert list(attempted.filter(status=Status.OUT_FOR_DELIVERY).values_list("tracking_number", flat=True)) == [
        unscanned
    ]
    assert list(attempted.filter(status=Status.FAILED_ATTEMPT).values_list("tracking_number", flat=True)) == [failing]
    delivered = attempted.filter(status=Status.DELIVERED)
    assert delivered.count() == attempted.count() - 2
    for shipment in delivered:
        assert shipment.proof_received_by and shipment.proof_photo and shipment.proof_signature
    driver = Driver.objects.get(ref="drv-demo")
    assert LocationPing.objects.filter(driver=driver).count() >= 5 * attempted.count()
    assert Stop.objects.filter(route__driver=driver, shipment__in=attempted).count() == attempted.count()
    # Its key is revoked when it stops.
    assert not ApiKey.objects.filter(name="simulate_deliveries", revoked_at=None).exists()
    assert "failed attempt" in out.getvalue()
    assert "left without a scan" in out.getvalue()

    # The faults' alerts: opened live, from the pings and the events.
    assert alerts_of(unscanned) == {("missed_scan", AlertState.OPEN)}
    missed = Alert.objects.get(shipment__tracking_number=unscanned)
    assert missed.detail["stop_sequence"] >= 1
    left = Stop.objects.get(shipment__tracking_number=unscanned, route__driver=driver)
    dwelled = (left.visit_near_at - left.visit_started_at).total_seconds()
    assert dwelled >= simulate_deliveries.missed_scan_dwell(driver.brand) == 30
    # Late from its first scan, resolved by its delivery.
    assert alerts_of(late) == {("late", AlertState.RESOLVED)}
    assert ("stuck", AlertState.OPEN) in alerts_of("NW100013")
    # No other stop was taken for a missed scan.
    assert Alert.objects.filter(kind="missed_scan").count() == 1


def test_the_next_round_delivers_the_unscanned_parcel_and_resolves_its_alert(
    asgi_server, settings, tmp_path, demo_clock
):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_demo", stdout=io.StringIO())
    call_command("simulate_deliveries", base_url=asgi_server, interval=0, rounds=2, stdout=io.StringIO())
    missed = Alert.objects.filter(kind="missed_scan").order_by("opened_at")
    assert [a.state for a in missed] == [AlertState.RESOLVED, AlertState.OPEN]
    first = missed[0]
    assert first.resolution == "rule"
    assert Shipment.objects.get(pk=first.shipment_id).status == Status.DELIVERED
