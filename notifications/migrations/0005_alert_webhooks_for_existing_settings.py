"""Brands whose settings were saved before alerts existed have a list of
webhook notices without them: they hear alert webhooks from now on, as the
defaults promise. A staff member's message to a customer is no webhook
event, so it leaves any list that took it up with the defaults."""

from django.db import migrations

ALERT_NOTICES = ["alert_opened", "alert_resolved"]
NOT_A_WEBHOOK = "customer_contacted"


def hear_alerts(apps, schema_editor):
    settings_model = apps.get_model("notifications", "BrandNotificationSettings")
    changed = []
    for row in settings_model.objects.only("pk", "webhook_notices").iterator(chunk_size=500):
        notices = row.webhook_notices if isinstance(row.webhook_notices, list) else []
        wanted = [kind for kind in notices if kind != NOT_A_WEBHOOK]
        wanted += [kind for kind in ALERT_NOTICES if kind not in wanted]
        if wanted != row.webhook_notices:
            row.webhook_notices = wanted
            changed.append(row)
    settings_model.objects.bulk_update(changed, ["webhook_notices"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0004_alert_messages")]

    operations = [migrations.RunPython(hear_alerts, migrations.RunPython.noop)]
