"""Run the notification sweep once: plan status changes and notices that were missed,
send notifications that are due (held SMS after quiet hours, retries).

Celery beat runs this every 30 seconds in production; with no REDIS_URL
(`make run`) there is no beat, and this command does the same job by hand.
"""

from django.core.management.base import BaseCommand

from notifications import tasks


class Command(BaseCommand):
    help = "Plan missed status changes and send the notifications that are due."

    def handle(self, *args, **options):
        enqueued = tasks.sweep_task()
        self.stdout.write(
            f"Handed to the workers: {enqueued['plans']} status change(s) to plan, "
            f"{enqueued['notices']} notice(s) to plan, {enqueued['sends']} notification(s) to send."
        )
