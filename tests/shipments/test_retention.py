"""GPS retention (shipments/retention.py), through its periodic task."""

from datetime import timedelta

from django.utils import timezone

from shipments import tasks
from shipments.models import Driver, LocationPing


def test_retention_sweep_deletes_old_pings_only(brand, settings):
    settings.LOCATION_PING_RETENTION_DAYS = 7
    driver = Driver.objects.create(brand=brand, ref="d1")
    now = timezone.now()
    old = LocationPing.objects.create(driver=driver, lat=51.5, lng=-0.1, recorded_at=now - timedelta(days=8))
    kept = LocationPing.objects.create(driver=driver, lat=51.5, lng=-0.1, recorded_at=now - timedelta(days=6))
    assert tasks.purge_location_pings_task.apply().get() == 1
    assert list(LocationPing.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not LocationPing.objects.filter(pk=old.pk).exists()
