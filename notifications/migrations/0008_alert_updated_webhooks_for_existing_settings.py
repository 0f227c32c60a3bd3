"""Brands whose settings were saved before shipment.alert_updated existed:
a brand that hears of alerts opening hears of the customer adding to one,
as the defaults promise."""

from django.db import migrations

ALERT_OPENED = "alert_opened"
ALERT_UPDATED = "alert_updated"


def hear_alert_updates(apps, schema_editor):
    settings_model = apps.get_model("notifications", "BrandNotificationSettings")
    changed = []
    for row in settings_model.objects.only("pk", "webhook_notices").iterator(chunk_size=500):
        notices = row.webhook_notices if isinstance(row.webhook_notices, list) else []
        if ALERT_OPENED in notices and ALERT_UPDATED not in notices:
            row.webhook_notices = [*notices, ALERT_UPDATED]
            changed.append(row)
    settings_model.objects.bulk_update(changed, ["webhook_notices"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0007_merge_eta_and_choice_notices"),
        ("shipments", "0014_notice_alert_updated"),
    ]

    operations = [migrations.RunPython(hear_alert_updates, migrations.RunPython.noop)]
