from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShipmentsConfig(AppConfig):
    name = "shipments"
    verbose_name = _("Deliveries")

    def ready(self) -> None:
        from .signals import shipments_changed
        from .tasks import evaluate_alerts_after_changes

        # Alerts are evaluated after each change commits (and under beat).
        shipments_changed.connect(evaluate_alerts_after_changes, dispatch_uid="shipments.evaluate_alerts")
