"""A demo day that moves: the demo driver drives the demo route, through the
portal's real HTTP API, so that open tracking pages update live.

Each round puts the demo brand's parcels that are out for delivery (and two
new ones, created through the API) on the driver's route for today, then
drives from stop to stop as the simulated days of the ETA's backtest do
(shipments.demo_day): along roads longer than the straight line, at the
hour's traffic, with GPS error, a ping every few seconds in real time, a
time at each door of its own (the scan comes before the van leaves), and
on some rounds two stops taken the other way round; so the ETA the portal
works out moves as it would on a real day. A failed attempt at one stop, a
delivery with proof (photo, signature, name) at the others. Then the next
round starts. With ``--interval 0`` a leg is a few pings and nothing waits.

Each round also brings faults for the alerts to open live: at one new
parcel's door the driver waits longer than the demo brand's missed-scan
dwell and drives on without a scan (a missed scan; delivered next round,
which resolves it), and another new parcel comes with a promised window
that has already ended (running late, until it is delivered). load_demo
adds a parcel stuck at the depot.

``make run`` starts it beside the server. It needs the server to be up and
makes its own API key for the demo brand, revoked however it stops: at the
end of its rounds, on Ctrl+C (SIGINT) or SIGTERM, or on an error.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import signal
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shipments import keys
from shipments.alert_models import BrandAlertSettings
from shipments.alert_rules import DEFAULTS
from shipments.demo_day import Fix, Van, World
from shipments.eta_model import Point
from shipments.models import Brand, Shipment
from shipments.statuses import Status

from .load_demo import DEMO_DRIVER, DEMO_SLUG, RECIPIENTS

# The depot the van leaves from, near Victoria.
DEPOT = (51.4966, -0.1390)
PINGS_PER_LEG = 5
NEW_PARCELS_PER_ROUND = 3
RECEIVERS = ["the resident", "a neighbour at number 4", "the concierge", "the resident's partner"]
KEY_NAME = "simulate_deliveries"
# Answers without a key or a database read: the server is up once it does.
READY_PATH = "/problems/validation-error"
# Waiting at a door, the driver's phone pings this often; it waits this
# many pings beyond the brand's missed-scan dwell.
WAITING_PING_SECONDS = 5.0
WAITING_PINGS_BEYOND_DWELL = 2
# The late parcel's promised window ended this long before it was loaded.
LATE_BY = dt.timedelta(minutes=20)


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


def pause(seconds: float) -> None:
    """The demo day's waits (between pings, at a door), in one place so a
    test can let the time pass at once."""
    time.sleep(seconds)


def missed_scan_dwell(brand: Brand) -> float:
    """How long, in seconds, a visit to a door lasts before a scan is due,
    by the brand's alert settings."""
    own = BrandAlertSettings.objects.filter(brand=brand).first()
    return (own.thresholds() if own else DEFAULTS).missed_scan_dwell.total_seconds()


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: stop where we are. A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` on the way swallows it."""


def _stop(signum, frame):
    # One is enough: a second Ctrl+C must not cut the key's revocation short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped(signal.Signals(signum).name)


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into Stopped. SIGINT is handled even when it
    came in ignored: a shell starts a background job (``make run``'s ``&``)
    with SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    stopped = False
    try:
        yield
    except Stopped:
        stopped = True
        raise
    finally:
        # Once stopped, signals stay ignored: the process is on its way out,
        # and the shell's trap sends SIGTERM after a Ctrl+C too.
        if not stopped:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def simulator_key(brand: Brand) -> Iterator[str]:
    """A key of the demo brand's for this run only, revoked when the run
    ends, however it ends."""
    api_key, raw_key = keys.create_api_key(brand=brand, name=KEY_NAME)
    try:
        yield raw_key
    finally:
        keys.revoke_api_key(api_key=api_key)


class Command(BaseCommand):
    help = "Drive the demo driver along the demo route through the HTTP API, round after round."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the portal is running.")
        parser.add_argument("--interval", type=float, default=3.0, help="Seconds between GPS pings.")
        parser.add_argument("--seed", type=int, default=1, help="The seed of the day's roads, traffic and doors.")
        parser.add_argument("--rounds", type=int, default=0, help="Stop after this many rounds (0: never).")
        parser.add_argument("--wait", type=float, default=30.0, help="Seconds to wait for the server to come up.")

    def handle(self, *args, base_url, interval, rounds, wait, seed=1, **options):
        brand = Brand.objects.filter(slug=DEMO_SLUG).first()
        if brand is None:
            raise CommandError("No demo brand: run `python manage.py load_demo` first.")
        # Its own lines say what happens; one more per HTTP request is noise.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if interval < 0:
            raise CommandError("--interval cannot be negative.")
        self.interval = interval
        self.position = DEPOT
        self.van = Van(World(seed=seed, drivers=1), Point(*DEPOT))
        self.dwell = missed_scan_dwell(brand)
        try:
            with stopped_by_signals(), simulator_key(brand) as raw_key:
                self.client = httpx.Client(
                    base_url=base_url.rstrip("/") + "/api/v1",
                    headers={"Authorization": f"Bearer {raw_key}"},
                    timeout=10,
                )
                with self.client:
                    self.say(f"waiting for the portal at {base_url}")
                    self.wait_for_server(wait)
                    for number in itertools.count(1):
                        self.drive_round(brand, number)
                        if rounds and number >= rounds:
                            break
        except Stopped:
            self.say("stopped; its API key is revoked")
        except httpx.TransportError as exc:
            # The server went away first (it was stopped too): say so plainly.
            raise CommandError(f"The portal at {base_url} stopped answering ({exc}); the demo day stops.") from None

    def wait_for_server(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.client.get(READY_PATH)
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
        # One new parcel a round finds nobody home; it goes out again next
        # round. At another's door the driver waits and leaves without a
        # scan; it stays on the van for the next round.
        failing, unscanned = new_numbers[0], new_numbers[1]
        driven = list(stops)
        swap = self.van.swapped(len(driven))
        if swap:
            a, b = swap
            driven[a], driven[b] = driven[b], driven[a]
            self.say(
                f"the driver takes {driven[b].tracking_number} and {driven[a].tracking_number} the other way round"
            )
        for index, stop in enumerate(driven):
            self.drive_to((stop.lat, stop.lng))
            if stop.tracking_number == unscanned:
                self.wait_at_the_door(stop)
                continue
            # The door's time: the scan comes most of the way through it.
            stay = self.van.stand(self.van.door_seconds(), step_s=self.interval)
            scan_after = max(1, len(stay) * 4 // 5)
            self.send_fixes(stay[:scan_after])
            if stop.tracking_number == failing:
                self.scan(stop, "failed_attempt", "Nobody home; we will try again tomorrow", "recipient_unavailable")
            else:
                self.deliver(stop, RECEIVERS[index % len(RECEIVERS)])
            self.send_fixes(stay[scan_after:])
        self.drive_to(DEPOT)

    def load_the_van(self, brand: Brand, number: int) -> tuple[list[Stop], list[str]]:
        now = timezone.now()
        run = now.strftime("%m%d%H%M%S")
        new_numbers = []
        for n in range(NEW_PARCELS_PER_ROUND):
            name, street, postcode, lat, lng = RECIPIENTS[(number * NEW_PARCELS_PER_ROUND + n) % len(RECIPIENTS)]
            tracking_number = f"SIM{run}{number:03d}{n}"
            # The last new parcel of a round missed its window at the depot.
            late = n == NEW_PARCELS_PER_ROUND - 1
            window_end = now - LATE_BY if late else now + dt.timedelta(hours=3)
            window_start = window_end - dt.timedelta(hours=3)
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
                    "promised_window": {"start": window_start.isoformat(), "end": window_end.isoformat()},
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
        steps = PINGS_PER_LEG if self.interval == 0 else 0
        self.send_fixes(self.van.drive(Point(*target), timezone.now(), step_s=self.interval, steps=steps))
        self.position = target

    def send_fixes(self, fixes: list[Fix]) -> None:
        """Each fix a ping, ``interval`` seconds apart in the wall clock."""
        for fix in fixes:
            self.ping(fix.point.lat, fix.point.lng, speed_mps=fix.speed_mps, heading_deg=fix.heading_deg)
            pause(self.interval)

    def wait_at_the_door(self, stop: Stop) -> None:
        """Stay at the stop, pinging, a little longer than the missed-scan
        dwell, then drive on without a scan."""
        pings = math.ceil(self.dwell / WAITING_PING_SECONDS) + WAITING_PINGS_BEYOND_DWELL
        for _ in range(pings):
            pause(WAITING_PING_SECONDS)
            self.ping(stop.lat, stop.lng, speed_mps=0.0, heading_deg=0.0)
        self.say(
            f"{stop.tracking_number}: waited {pings * WAITING_PING_SECONDS:.0f} s at the door, left without a scan"
        )

    def ping(self, lat: float, lng: float, *, speed_mps: float, heading_deg: float) -> None:
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
                        "speed_mps": speed_mps,
                        "heading_deg": round(heading_deg, 1),
                    }
                ],
            },
        )

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
