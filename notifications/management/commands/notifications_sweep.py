"""Run the notification sweep once: plan status changes that were missed,
send notifications that are due (held SMS after quiet hours, retries).

Celery beat runs this every 30 seconds in production; with no REDIS_URL
(`make run`) there is no beat, and this command does the same job by hand.
"""

from django.core.management.base import BaseCommand

from notifications import services, tasks


class Command(BaseCommand):
    help = "Plan missed status changes and send the notifications that are due."

    def handle(self, *args, **options):
        result = services.sweep()
        enqueued = tasks.enqueue_sends(result.due_notifications)
        self.stdout.write(
            f"Planned {result.planned_changes} status change(s); "
            f"{enqueued} of {len(result.due_notifications)} due notification(s) handed to the workers."
        )
