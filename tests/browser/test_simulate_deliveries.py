"""simulate_deliveries against a running portal (the live uvicorn of tests/browser)."""

import io

from django.core.management import call_command

from shipments.models import ApiKey, Driver, LocationPing, Shipment, Stop
from shipments.statuses import Status


def test_a_round_drives_the_route_through_the_api(asgi_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_demo", stdout=io.StringIO())
    on_van_before = set(
        Shipment.objects.filter(status=Status.OUT_FOR_DELIVERY).values_list("tracking_number", flat=True)
    )
    out = io.StringIO()
    call_command("simulate_deliveries", base_url=asgi_server, interval=0, rounds=1, stdout=out)

    simulated = Shipment.objects.filter(tracking_number__startswith="SIM")
    assert simulated.count() == 3
    # Everything that was on the van has had its attempt: one failed, the rest delivered with proof.
    attempted = Shipment.objects.filter(
        tracking_number__in=on_van_before | set(simulated.values_list("tracking_number", flat=True))
    )
    assert not attempted.filter(status=Status.OUT_FOR_DELIVERY).exists()
    assert attempted.filter(status=Status.FAILED_ATTEMPT).count() == 1
    delivered = attempted.filter(status=Status.DELIVERED)
    assert delivered.count() == attempted.count() - 1
    for shipment in delivered:
        assert shipment.proof_received_by and shipment.proof_photo and shipment.proof_signature
    driver = Driver.objects.get(ref="drv-demo")
    assert LocationPing.objects.filter(driver=driver).count() >= 5 * attempted.count()
    assert Stop.objects.filter(route__driver=driver, shipment__in=attempted).count() == attempted.count()
    # Its key is revoked when it stops.
    assert not ApiKey.objects.filter(name="simulate_deliveries", revoked_at=None).exists()
    assert "failed attempt" in out.getvalue()
