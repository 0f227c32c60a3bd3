import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from shipments.signals import notices_written, shipments_changed

        shipments_changed.connect(plan_after_status_changes, dispatch_uid="notifications.plan_after_status_changes")
        notices_written.connect(plan_after_notices, dispatch_uid="notifications.plan_after_notices")


def plan_after_status_changes(sender, *, changes, **kwargs):
    """Enqueue planning once the status changes have committed. If Redis is
    down the enqueue fails here, is logged, and the changes stay unprocessed
    for the sweep; the caller that recorded the events never sees an error."""
    status_change_ids = [change.status_change_id for change in changes if change.status_change_id is not None]
    if not status_change_ids:
        return
    from .tasks import plan_soon

    try:
        plan_soon(status_change_ids)
    except Exception:
        # In-process (eager) mode runs the task right here.
        logger.exception("Planning notifications for status changes %s failed.", status_change_ids)


def plan_after_notices(sender, *, notice_ids, **kwargs):
    """Enqueue planning once the notices have committed; as for status
    changes, a failed enqueue leaves them to the sweep and the customer's
    request never sees an error."""
    from .tasks import plan_notices_soon

    try:
        plan_notices_soon(list(notice_ids))
    except Exception:
        # In-process (eager) mode runs the task right here.
        logger.exception("Planning notifications for notices %s failed.", notice_ids)
