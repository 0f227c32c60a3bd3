from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShipmentsConfig(AppConfig):
    name = "shipments"
    verbose_name = _("Deliveries")

    def ready(self) -> None:
        from . import eta
        from .signals import driver_moved, shipments_changed
        from .tasks import evaluate_alerts_after_changes

        # Alerts are evaluated after each change commits (and under beat).
        shipments_changed.connect(evaluate_alerts_after_changes, dispatch_uid="shipments.evaluate_alerts")
        # The portal's own ETA follows the vans' pings and scans.
        driver_moved.connect(eta.on_driver_moved, dispatch_uid="shipments.eta_on_driver_moved")
        shipments_changed.connect(eta.on_shipments_changed, dispatch_uid="shipments.eta_on_shipments_changed")
