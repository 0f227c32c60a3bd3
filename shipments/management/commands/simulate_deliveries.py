"""A demo day that moves: the demo driver drives the demo route, through the
portal's real HTTP API, so that open tracking pages update live.

Each round puts the demo brand's parcels that are out for delivery (and two
new ones, created through the API) on the driver's route for today, then
drives from stop to stop: GPS pings every few seconds, a scan on arrival, a
failed attempt at one stop, a delivery with proof (photo, signature, name)
at the others. Then the next round starts.

``make run`` starts it beside the server. It needs the server to be up and
makes its own API key for the demo brand (revoked when it stops).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import struct
import time
import zlib
from dataclasses import dataclass

import httpx
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shipments import keys
from shipments.models import Brand, Shipment
from shipments.statuses import Status

from .load_demo import DEMO_DRIVER, DEMO_SLUG, RECIPIENTS

# The depot the van leaves from, near Victoria.
DEPOT = (51.4966, -0.1390)
PINGS_PER_LEG = 5
NEW_PARCELS_PER_ROUND = 3
RECEIVERS = ["the resident", "a neighbour at number 4", "the concierge", "the resident's partner"]


@dataclass
class Stop:
    tracking_number: str
    lat: float
    lng: float


def png(width: int, height: int, pixel) -> bytes:
    """A small RGB PNG drawn by ``pixel(x, y) -> (r, g, b)``; enough for a
    demo proof photo and signature."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def doorstep_photo() -> bytes:
    def pixel(x, y):
        if 40 <= x < 120 and 50 <= y < 100:  # the parcel
            return (176, 124, 72) if not (76 <= x < 84) else (214, 190, 140)
        if y >= 100:  # the doorstep
            return (150, 150, 156)
        return (92, 112, 140)  # the door

    return png(160, 120, pixel)


def signature_image() -> bytes:
    def pixel(x, y):
        curve = 30 + 14 * math.sin(x / 9.0) * math.cos(x / 23.0)
        return (20, 30, 60) if abs(y - curve) < 1.6 and 12 < x < 150 else (255, 255, 255)

    return png(160, 60, pixel)


class Command(BaseCommand):
    help = "Drive the demo driver along the demo route through the HTTP API, round after round."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the portal is running.")
        parser.add_argument("--interval", type=float, default=3.0, help="Seconds between GPS pings.")
        parser.add_argument("--rounds", type=int, default=0, help="Stop after this many rounds (0: never).")
        parser.add_argument("--wait", type=float, default=30.0, help="Seconds to wait for the server to come up.")

    def handle(self, *args, base_url, interval, rounds, wait, **options):
        brand = Brand.objects.filter(slug=DEMO_SLUG).first()
        if brand is None:
            raise CommandError("No demo brand: run `python manage.py load_demo` first.")
        # Its own lines say what happens; one more per HTTP request is noise.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        api_key, raw_key = keys.create_api_key(brand=brand, name="simulate_deliveries")
        self.client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1", headers={"Authorization": f"Bearer {raw_key}"}, timeout=10
        )
        self.interval = interval
        self.position = DEPOT
        try:
            self.wait_for_server(wait)
            for number in itertools.count(1):
                self.drive_round(brand, number)
                if rounds and number >= rounds:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            self.client.close()
            keys.revoke_api_key(api_key=api_key)

    def wait_for_server(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.client.get("/shipments/none")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise CommandError(f"The portal at {self.client.base_url} did not answer.") from None
                time.sleep(0.5)

    def post(self, path: str, body: dict | None = None, **kwargs) -> dict:
        response = self.client.post(path, json=body, **kwargs) if body is not None else self.client.post(path, **kwargs)
        if response.status_code >= 400:
            raise CommandError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def say(self, text: str) -> None:
        self.stdout.write(f"[demo day] {text}")

    def drive_round(self, brand: Brand, number: int) -> None:
        stops, new_numbers = self.load_the_van(brand, number)
        self.say(f"round {number}: {len(stops)} stops: {', '.join(s.tracking_number for s in stops)}")
        # One new parcel a round finds nobody home; it goes out again next round.
        failing = next(i for i, s in enumerate(stops) if s.tracking_number == new_numbers[0])
        for index, stop in enumerate(stops):
            self.drive_to((stop.lat, stop.lng))
            if index == failing:
                self.scan(stop, "failed_attempt", "Nobody home; we will try again tomorrow", "recipient_unavailable")
            else:
                self.deliver(stop, RECEIVERS[index % len(RECEIVERS)])
        self.drive_to(DEPOT)

    def load_the_van(self, brand: Brand, number: int) -> tuple[list[Stop], list[str]]:
        now = timezone.now()
        run = now.strftime("%m%d%H%M%S")
        new_numbers = []
        for n in range(NEW_PARCELS_PER_ROUND):
            name, street, postcode, lat, lng = RECIPIENTS[(number * NEW_PARCELS_PER_ROUND + n) % len(RECIPIENTS)]
            tracking_number = f"SIM{run}{number:03d}{n}"
            self.post(
                "/shipments",
                {
                    "tracking_number": tracking_number,
                    "carrier": "northwind-fleet",
                    "recipient": {
                        "name": name,
                        "email": f"{name.split()[0].lower()}@example.com",
                        "language": "en",
                        "timezone": "Europe/London",
                    },
                    "destination": {
                        "line1": street,
                        "city": "London",
                        "postcode": postcode,
                        "country": "GB",
                        "lat": lat,
                        "lng": lng,
                    },
                    "promised_window": {
                        "start": now.isoformat(),
                        "end": (now + dt.timedelta(hours=3)).isoformat(),
                    },
                },
            )
            new_numbers.append(tracking_number)
        self.post(
            "/events",
            {
                "events": [
                    event
                    for i, tracking_number in enumerate(new_numbers)
                    for event in (
                        self.event(
                            tracking_number, "in_transit", "Arrived at the London depot", f"arr-{i}", minutes=-30
                        ),
                        self.event(tracking_number, "out_for_delivery", "On the van with your driver", f"ofd-{i}"),
                    )
                ]
            },
        )
        retries = list(
            Shipment.objects.filter(brand=brand, status=Status.FAILED_ATTEMPT, tracking_number__startswith="SIM")
            .order_by("created_at")
            .values_list("tracking_number", flat=True)[:2]
        )
        if retries:
            self.post(
                "/events",
                {
                    "events": [
                        self.event(n, "out_for_delivery", "Back on the van for another try", f"ofd-r{number}")
                        for n in retries
                    ]
                },
            )
        on_van = list(
            Shipment.objects.filter(brand=brand, status=Status.OUT_FOR_DELIVERY)
            .exclude(destination_lat=None)
            .order_by("created_at")
            .values_list("tracking_number", "destination_lat", "destination_lng")[:8]
        )
        stops = self.nearest_first([Stop(*row) for row in on_van])
        self.post(
            "/routes",
            {
                "driver_ref": DEMO_DRIVER,
                "date": timezone.localdate().isoformat(),
                "stops": [s.tracking_number for s in stops],
            },
        )
        return stops, new_numbers

    def nearest_first(self, stops: list[Stop]) -> list[Stop]:
        ordered, here = [], self.position
        remaining = list(stops)
        while remaining:
            nearest = min(remaining, key=lambda s: (s.lat - here[0]) ** 2 + (s.lng - here[1]) ** 2)
            remaining.remove(nearest)
            ordered.append(nearest)
            here = (nearest.lat, nearest.lng)
        return ordered

    def drive_to(self, target: tuple[float, float]) -> None:
        start = self.position
        heading = math.degrees(math.atan2(target[1] - start[1], target[0] - start[0])) % 360
        for step in range(1, PINGS_PER_LEG + 1):
            fraction = step / PINGS_PER_LEG
            lat = start[0] + (target[0] - start[0]) * fraction
            lng = start[1] + (target[1] - start[1]) * fraction
            self.post(
                "/locations",
                {
                    "driver_ref": DEMO_DRIVER,
                    "pings": [
                        {
                            "lat": round(lat, 6),
                            "lng": round(lng, 6),
                            "recorded_at": timezone.now().isoformat(),
                            "accuracy_m": 5.0,
                            "speed_mps": 6.5,
                            "heading_deg": round(heading, 1),
                        }
                    ],
                },
            )
            time.sleep(self.interval)
        self.position = target

    def event(self, tracking_number, status, text, external_id, substatus="", minutes=0) -> dict:
        return {
            "tracking_number": tracking_number,
            "status": status,
            "substatus": substatus,
            "occurred_at": (timezone.now() + dt.timedelta(minutes=minutes)).isoformat(),
            "external_id": f"sim-{tracking_number}-{external_id}",
            "description": text,
            "location": {"city": "London", "lat": self.position[0], "lng": self.position[1]},
            "source": "driver",
        }

    def scan(self, stop: Stop, status: str, text: str, substatus: str = "") -> None:
        self.post("/events", {"events": [self.event(stop.tracking_number, status, text, status, substatus)]})
        self.say(f"{stop.tracking_number}: {status.replace('_', ' ')}")

    def deliver(self, stop: Stop, received_by: str) -> None:
        self.post(
            f"/shipments/{stop.tracking_number}/proof-of-delivery",
            data={
                "occurred_at": timezone.now().isoformat(),
                "external_id": f"sim-{stop.tracking_number}-delivered",
                "received_by": received_by.capitalize(),
                "description": f"Delivered, handed to {received_by}",
            },
            files={
                "photo": ("doorstep.png", doorstep_photo(), "image/png"),
                "signature": ("signature.png", signature_image(), "image/png"),
            },
        )
        self.say(f"{stop.tracking_number}: delivered to {received_by}")
