"""demo_shop: a pretend shop's order page on a second origin, beside the
portal `make run` starts, showing the status widget as a brand would paste
it: one parcel by its token, an order signed here on the shop's "server"
with the brand's embed secret, and the look-up form.

The page is made again for every visit, so its order link never expires
under a visitor's eyes. Development only: one thread, loopback by default."""

import os
import socket
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.template.loader import render_to_string

from shipments.embedding import order_signature
from shipments.models import Brand, Shipment
from tracking_portal.local_server import DEFAULT_HOST, DEFAULT_PORT, demo_shop_url, local_base_url

from .load_demo import DEMO_SLUG

# How long the shop's signed order link lasts: a page view's worth.
ORDER_LINK_SECONDS = 3600


def shop_page(portal: str) -> str:
    brand = Brand.objects.get(slug=DEMO_SLUG)
    parcels = Shipment.objects.filter(brand=brand).order_by("tracking_number")
    on_the_van = parcels.filter(status="out_for_delivery").first()
    ordered = parcels.filter(status="delivered").exclude(order_ref="").first()
    order = None
    if ordered and brand.embed_secret:
        expires = int(time.time()) + ORDER_LINK_SECONDS
        order = {
            "ref": ordered.order_ref,
            "expires": expires,
            "signature": order_signature(brand.embed_secret, ordered.order_ref, expires),
        }
    return render_to_string(
        "demo/shop.html",
        {
            "portal": portal,
            "brand": brand,
            "parcel": on_the_van,
            "parcel_url": portal + on_the_van.get_absolute_url() if on_the_van else "",
            "order": order,
            "lookup_url": f"{portal}/track/{brand.slug}/",
        },
    )


class IPv6Server(HTTPServer):
    # For HOST=:: or ::1, as uvicorn takes them.
    address_family = socket.AF_INET6


def handler_for(portal: str):
    # The shop's own policy, as strict as a careful shop's: the widget needs
    # the portal as a script source and as a frame source, nothing more.
    policy = (
        f"default-src 'none'; script-src {portal}; frame-src {portal}; "
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    )

    class ShopHandler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/":
                self.send_error(404)
                return
            close_old_connections()
            try:
                body = shop_page(portal).encode()
            except Brand.DoesNotExist:
                self.send_error(503, "No demo brand: run manage.py load_demo first.")
                return
            finally:
                close_old_connections()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", policy)
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    return ShopHandler


class Command(BaseCommand):
    help = "Serve a demo shop's order page with the status widget, on the port after the portal's."

    def add_arguments(self, parser):
        # The same HOST and PORT as the portal's (the Makefile exports them).
        parser.add_argument("--host", default=os.environ.get("HOST", DEFAULT_HOST))
        parser.add_argument("--port", default=os.environ.get("PORT", DEFAULT_PORT), help="The portal's port.")

    def handle(self, *args, host, port, **options):
        portal = local_base_url(host, port)
        server_class = IPv6Server if ":" in host else HTTPServer
        server = server_class((host.strip("[]"), int(port) + 1), handler_for(portal))
        self.stdout.write(f"Demo shop on {demo_shop_url(host, port)}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
