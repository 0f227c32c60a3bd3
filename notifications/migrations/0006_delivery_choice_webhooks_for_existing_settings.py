"""Brands whose settings were saved before delivery choices existed have a
list of webhook notices without them: a brand that hears of the customer's
delivery instructions hears of their delivery choice too, as the defaults
promise."""

from django.db import migrations

CUSTOMER_CHANGE = "instructions_updated"
DELIVERY_CHOICE = "delivery_choice_updated"


def hear_delivery_choices(apps, schema_editor):
    settings_model = apps.get_model("notifications", "BrandNotificationSettings")
    changed = []
    for row in settings_model.objects.only("pk", "webhook_notices").iterator(chunk_size=500):
        notices = row.webhook_notices if isinstance(row.webhook_notices, list) else []
        if CUSTOMER_CHANGE in notices and DELIVERY_CHOICE not in notices:
            row.webhook_notices = [*notices, DELIVERY_CHOICE]
            changed.append(row)
    settings_model.objects.bulk_update(changed, ["webhook_notices"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_alert_webhooks_for_existing_settings"),
        ("shipments", "0010_pickup_points_delivery_choices"),
    ]

    operations = [migrations.RunPython(hear_delivery_choices, migrations.RunPython.noop)]
