import os

from django.core.management.base import BaseCommand

from shipments.models import Shipment
from tracking_portal.local_server import DEFAULT_HOST, DEFAULT_PORT, demo_shop_url, local_base_url


class Command(BaseCommand):
    help = "Print the URLs to open once the portal is running."

    def add_arguments(self, parser):
        # The same HOST and PORT the settings read, so that these links and
        # the ones in messages (PUBLIC_BASE_URL when unset) agree.
        parser.add_argument("--host", default=os.environ.get("HOST", DEFAULT_HOST))
        parser.add_argument("--port", default=os.environ.get("PORT", DEFAULT_PORT))

    def handle(self, *args, host, port, **options):
        base = local_base_url(host, port)
        lines = [
            "",
            "The tracking portal is starting. Open:",
            f"  Support admin:              {base}/admin/   (demo login: admin / admin)",
            f"  Look up a parcel:           {base}/track/",
        ]
        for status in ("out_for_delivery", "delivered", "in_transit"):
            shipment = Shipment.objects.filter(status=status).order_by("tracking_number").first()
            if shipment:
                label = f"A parcel {status.replace('_', ' ')}:"
                lines.append(f"  {label:<28}{base}{shipment.get_absolute_url()}")
        lines.append(f"  {'The widget on a demo shop:':<28}{demo_shop_url(host, port)}/")
        lines.append("Stop with Ctrl+C.\n")
        self.stdout.write("\n".join(lines))
