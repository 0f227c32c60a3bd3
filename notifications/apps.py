import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from shipments.signals import shipment_changed

        shipment_changed.connect(plan_after_status_change, dispatch_uid="notifications.plan_after_status_change")


def plan_after_status_change(sender, *, status_change_id=None, **kwargs):
    """Enqueue planning once the status change has committed. If Redis is
    down the enqueue fails here, is logged, and the change stays unprocessed
    for the sweep; the caller that recorded the event never sees an error."""
    if status_change_id is None:
        return
    from .tasks import enqueue_plan

    try:
        enqueue_plan(status_change_id)
    except Exception:
        # In-process (eager) mode runs the task right here.
        logger.exception("Planning notifications for status change %s failed.", status_change_id)
