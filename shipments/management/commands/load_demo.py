"""Demo data for a newcomer: a brand, shipments in every status, a driver
with today's route. Safe to run again: it adds only what is missing.

Among them, faults for the alerts to find: a parcel stuck at the depot (in
transit, last scanned more than a day ago) and one with a carrier exception.
The demo brand's alert settings wait a shorter time at a door before a
missed scan, because the demo day (simulate_deliveries) runs a route in
minutes rather than hours."""

import os
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from shipments import choices, services
from shipments.alert_models import BrandAlertSettings
from shipments.embedding import embed_origins, new_embed_secret
from shipments.models import Brand, Driver, EventSource, PickupPoint, Route, Stop
from shipments.services import NewEvent
from tracking_portal.local_server import DEFAULT_HOST, DEFAULT_PORT, demo_shop_url

DEMO_SLUG = "demo"
DEMO_DRIVER = "drv-demo"

# London, around Westminster: (name, street, postcode, lat, lng).
RECIPIENTS = [
    ("Ada Lovelace", "12 Great Peter Street", "SW1P 2BU", 51.4961, -0.1306),
    ("Alan Turing", "3 Smith Square", "SW1P 3HT", 51.4964, -0.1270),
    ("Grace Hopper", "40 Horseferry Road", "SW1P 2AE", 51.4947, -0.1290),
    ("Katherine Johnson", "8 Millbank", "SW1P 3JA", 51.4951, -0.1253),
    ("Tim Berners-Lee", "21 Vincent Square", "SW1P 2NA", 51.4930, -0.1352),
    ("Hedy Lamarr", "5 Lambeth Bridge Road", "SE1 7SG", 51.4944, -0.1213),
    ("Margaret Hamilton", "17 Page Street", "SW1P 4JL", 51.4935, -0.1297),
    ("Claude Shannon", "2 Marsham Street", "SW1P 4DF", 51.4957, -0.1298),
    ("Barbara Liskov", "60 Regency Street", "SW1P 4AH", 51.4927, -0.1322),
    ("Donald Knuth", "9 Tufton Street", "SW1P 3QB", 51.4971, -0.1282),
    ("Frances Allen", "14 Romney Street", "SW1P 3RD", 51.4966, -0.1291),
    ("Edsger Dijkstra", "33 Causton Street", "SW1P 4AU", 51.4920, -0.1305),
    ("Radia Perlman", "27 Greycoat Place", "SW1P 1SB", 51.4975, -0.1335),
]
# The demo day's driver waits at a door this long (the shortest dwell a
# brand may set) before driving on without a scan: a missed scan.
DEMO_MISSED_SCAN_DWELL_SECONDS = 30

# Each demo shipment's story so far: (status, minutes before now, carrier code, text, city).
HISTORY = {
    "pending": [],
    "info_received": [("info_received", 600, "LBL", "Label created, parcel awaiting collection", "Reading")],
    "in_transit": [
        ("info_received", 900, "LBL", "Label created", "Reading"),
        ("in_transit", 300, "DEP", "Left the Reading hub", "Reading"),
        ("in_transit", 120, "ARR", "Arrived at the London depot", "London"),
    ],
    "out_for_delivery": [
        ("info_received", 1500, "LBL", "Label created", "Reading"),
        ("in_transit", 700, "DEP", "Left the Reading hub", "Reading"),
        ("in_transit", 300, "ARR", "Arrived at the London depot", "London"),
        ("out_for_delivery", 45, "OFD", "On the van with your driver", "London"),
    ],
    "failed_attempt": [
        ("in_transit", 600, "ARR", "Arrived at the London depot", "London"),
        ("out_for_delivery", 240, "OFD", "On the van with your driver", "London"),
        ("failed_attempt", 60, "NH", "Nobody home; we will try again tomorrow", "London"),
    ],
    "available_for_pickup": [
        ("in_transit", 1400, "ARR", "Arrived at the London depot", "London"),
        ("available_for_pickup", 200, "PUP", "Ready to collect at Victoria parcel shop", "London"),
    ],
    "exception": [
        ("in_transit", 1000, "DEP", "Left the Reading hub", "Reading"),
        ("exception", 90, "ADR", "We could not find the address; we are checking it", "London"),
    ],
    "returned_to_sender": [
        ("in_transit", 5000, "DEP", "Left the Reading hub", "Reading"),
        ("failed_attempt", 4000, "NH", "Nobody home", "London"),
        ("returned_to_sender", 2000, "RTS", "Returned to the sender", "Reading"),
    ],
    "delivered": [
        ("info_received", 2000, "LBL", "Label created", "Reading"),
        ("in_transit", 1500, "DEP", "Left the Reading hub", "Reading"),
        ("out_for_delivery", 400, "OFD", "On the van with your driver", "London"),
        ("delivered", 180, "DLV", "Delivered, handed to the resident", "London"),
    ],
    "cancelled": [
        ("info_received", 3000, "LBL", "Label created", "Reading"),
        ("cancelled", 2500, "CAN", "Order cancelled by the shop", "Reading"),
    ],
}

# A fault: in transit, last scanned at the depot more than a day ago.
STORIES = {
    **HISTORY,
    "stuck_at_depot": [
        ("info_received", 3200, "LBL", "Label created", "Reading"),
        ("in_transit", 2600, "DEP", "Left the Reading hub", "Reading"),
        ("in_transit", 1900, "ARR", "Arrived at the London depot", "London"),
    ],
}

# Thirteen shipments: every status once, two more on the van for a real
# route, and one stuck at the depot.
PLAN = [*HISTORY, "out_for_delivery", "out_for_delivery", "stuck_at_depot"]


def open_to_the_demo_shop(brand: Brand) -> None:
    """The demo shop `make run` serves (manage.py demo_shop) frames the
    brand's widget and signs its order links: its origin joins the brand's
    embed origins and the brand gets an embed secret, each only if missing."""
    shop = demo_shop_url(os.environ.get("HOST", DEFAULT_HOST), os.environ.get("PORT", DEFAULT_PORT))
    changed = []
    if shop not in embed_origins(brand):
        brand.embed_origins = "\n".join(filter(None, [brand.embed_origins.strip(), shop]))
        changed.append("embed_origins")
    if not brand.embed_secret:
        brand.embed_secret = new_embed_secret()
        changed.append("embed_secret")
    if changed:
        brand.save(update_fields=changed)


# The demo brand's pickup points: shops, so their addresses are public.
WEEKDAYS_9_TO_6 = [{"day": day, "opens": "09:00", "closes": "18:00"} for day in range(5)]
PICKUP_POINTS = [
    {
        "name": "Victoria Parcel Shop",
        "line1": "12 Wilton Road",
        "postcode": "SW1V 1LL",
        "city": "London",
        "country": "GB",
        "lat": 51.4952,
        "lng": -0.1439,
        "opening_hours": [*WEEKDAYS_9_TO_6, {"day": 5, "opens": "10:00", "closes": "16:00"}],
    },
    {
        "name": "Pimlico Newsagent",
        "line1": "48 Lupus Street",
        "postcode": "SW1V 3EB",
        "city": "London",
        "country": "GB",
        "lat": 51.4867,
        "lng": -0.1363,
        "opening_hours": [
            *({"day": day, "opens": "07:00", "closes": "13:00"} for day in range(6)),
            *({"day": day, "opens": "14:00", "closes": "20:00"} for day in range(6)),
        ],
    },
    {
        "name": "Westminster Locker",
        "line1": "Horseferry Road car park",
        "postcode": "SW1P 2AF",
        "city": "London",
        "country": "GB",
        "lat": 51.4946,
        "lng": -0.1301,
        "opening_hours": [{"day": day, "opens": "00:00", "closes": "23:59"} for day in range(7)],
    },
]


class Command(BaseCommand):
    help = (
        "Load demo data (a brand, a dozen shipments in every status and one stuck at the depot, "
        "a driver with a route). Idempotent."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            brand, _ = Brand.objects.get_or_create(
                slug=DEMO_SLUG,
                defaults={
                    "name": "Northwind Parcels",
                    "primary_colour": "#1d4ed8",
                    "accent_colour": "#0f766e",
                    "support_email": "help@northwind.example",
                    "support_phone": "+442079460000",
                    "support_url": "https://northwind.example/help",
                    "default_timezone": "Europe/London",
                },
            )
            driver, _ = Driver.objects.get_or_create(brand=brand, ref=DEMO_DRIVER, defaults={"name": "Sam"})
            BrandAlertSettings.objects.get_or_create(
                brand=brand, defaults={"missed_scan_dwell_seconds": DEMO_MISSED_SCAN_DWELL_SECONDS}
            )
            open_to_the_demo_shop(brand)
        now = timezone.now()
        created = 0
        shipments = []
        for n, status in enumerate(PLAN, start=1):
            name, street, postcode, lat, lng = RECIPIENTS[n - 1]
            shipment, is_new = services.create_shipment(
                brand=brand,
                tracking_number=f"NW{100000 + n}",
                carrier="northwind-fleet",
                order_ref=f"ORD-{2000 + n}",
                recipient_name=name,
                recipient_phone=f"+4477009001{n:02d}",
                recipient_email=f"{name.split()[0].lower()}@example.com",
                recipient_language="en",
                recipient_timezone="Europe/London",
                destination_line1=street,
                destination_city="London",
                destination_postcode=postcode,
                destination_country="GB",
                destination_lat=lat,
                destination_lng=lng,
                promised_window_start=now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1),
                promised_window_end=now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=4),
            )
            shipments.append((shipment, status))
            if is_new:
                created += 1
                events = [
                    NewEvent(
                        status=s,
                        occurred_at=now - timedelta(minutes=ago),
                        source=EventSource.CARRIER,
                        external_id=f"demo-{shipment.tracking_number}-{i}",
                        carrier_code=code,
                        description=text,
                        location_city=city,
                    )
                    for i, (s, ago, code, text, city) in enumerate(STORIES[status])
                ]
                if events:
                    services.record_events(shipment_id=shipment.pk, events=events)
                if status == "delivered":
                    services.attach_proof_of_delivery(shipment_id=shipment.pk, received_by="A. Lovelace")

        route, _ = Route.objects.get_or_create(driver=driver, date=timezone.localdate())
        if not route.stops.exists():
            on_van = [s for s, status in shipments if status == "out_for_delivery"]
            Stop.objects.bulk_create(
                Stop(route=route, shipment=shipment, sequence=i) for i, shipment in enumerate(on_van, start=1)
            )
        if Driver.objects.filter(pk=driver.pk, last_position_at__isnull=True).exists():
            Driver.objects.filter(pk=driver.pk).update(
                last_lat=51.4990, last_lng=-0.1245, last_position_at=now, last_heading_deg=180
            )

        self.load_pickup_points(brand, shipments, now)

        if settings.DEBUG:
            user_model = get_user_model()
            if not user_model.objects.filter(username="admin").exists():
                user_model.objects.create_superuser("admin", "admin@example.com", "admin")
                self.stdout.write("Created the demo superuser admin / admin (DEBUG only).")

        self.stdout.write(f"Demo brand '{brand.slug}': {created} new shipments, {len(shipments)} in all.")

    def load_pickup_points(self, brand: Brand, shipments, now) -> None:
        """The brand's pickup points, and the parcel ready for pickup
        waiting at the first of them, each only if missing."""
        points = []
        for fields in PICKUP_POINTS:
            point = PickupPoint.objects.filter(brand=brand, name=fields["name"]).first()
            points.append(point or choices.create_pickup_point(brand=brand, **fields))
        for shipment, status in shipments:
            if status == "available_for_pickup" and choices.hold_of(shipment) is None:
                choices.set_pickup_hold(
                    shipment=shipment,
                    pickup_point=points[0],
                    collection_code="NW-4821",
                    collect_by=(now + timedelta(days=7)).date(),
                )
