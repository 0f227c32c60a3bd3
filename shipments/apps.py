from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShipmentsConfig(AppConfig):
    name = "shipments"
    verbose_name = _("Deliveries")

    def ready(self) -> None:
        from .alerts import on_shipments_changed
        from .signals import shipments_changed

        # Alerts are evaluated after each change commits (and under beat).
        shipments_changed.connect(on_shipments_changed, dispatch_uid="shipments.evaluate_alerts")
