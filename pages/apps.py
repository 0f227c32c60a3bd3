from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"

    def ready(self):
        from shipments import signals

        from .live import receivers

        # Open tracking pages hear of every change they show.
        signals.shipments_changed.connect(receivers.on_shipments_changed, dispatch_uid="live.shipments_changed")
        signals.driver_moved.connect(receivers.on_driver_moved, dispatch_uid="live.driver_moved")
