from django.core.management.base import BaseCommand

from shipments.models import Shipment


class Command(BaseCommand):
    help = "Print the URLs to open once the portal is running."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host, port, **options):
        base = f"http://{host}:{port}"
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
        lines.append("Stop with Ctrl+C.\n")
        self.stdout.write("\n".join(lines))
