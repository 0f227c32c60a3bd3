"""The first promised window's end, kept for on-time analytics, filled in
from today's window for the shipments that already have one; the indexes
the analytics rollup reads by: updated_at (its watermark) and the brand's
delivery times (its days)."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    Shipment = apps.get_model("shipments", "Shipment")
    Shipment.objects.filter(first_window_end__isnull=True, promised_window_end__isnull=False).update(
        first_window_end=models.F("promised_window_end")
    )


class Migration(migrations.Migration):
    dependencies = [("shipments", "0008_search_trigrams")]

    operations = [
        migrations.AddField(
            model_name="shipment",
            name="first_window_end",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(fields=["updated_at"], name="shipment_updated_at"),
        ),
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(fields=["brand", "delivered_at"], name="shipment_brand_delivered"),
        ),
    ]
