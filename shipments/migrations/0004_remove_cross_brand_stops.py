"""Stops whose parcel belongs to another brand than the route's driver.

The admin's stop inline once accepted any shipment id, so a route could
carry another brand's parcel (whose public page then showed this driver);
the admin and the API refuse them now, and this removes any made before.
"""

from django.db import migrations
from django.db.models import F


def remove_cross_brand_stops(apps, schema_editor):
    Stop = apps.get_model("shipments", "Stop")
    foreign = Stop.objects.exclude(shipment__brand_id=F("route__driver__brand_id"))
    removed = list(foreign.values_list("pk", flat=True))
    if removed:
        Stop.objects.filter(pk__in=removed).delete()
        print(f"\n  Removed {len(removed)} stop(s) of another brand's parcel: ids {removed[:20]}")


class Migration(migrations.Migration):
    dependencies = [("shipments", "0003_brand_logo_notices")]

    operations = [migrations.RunPython(remove_cross_brand_stops, migrations.RunPython.noop)]
