"""What bench/rush.py stands on: its data, the brand's webhook receiver, the
warm-up and the Celery processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import _setup

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def serve_receiver(port_queue, arrivals) -> None:
    """The brand's webhook endpoint, in a process of its own so that the
    client's busy event loop does not delay its clock."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            now = time.time()
            body = self.rfile.read(int(self.headers["content-length"]))
            arrivals.put((json.loads(body)["data"].get("status_change_id"), now))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 1024
    port_queue.put(server.server_port)
    server.serve_forever()


def set_up(database_url: str, redis_url: str):
    """The rush's world before its data: messages through the console
    backends and to a webhook receiver on loopback (which a deployment
    refuses, shipments/outbound.py), a fresh database migrated, and the
    receiver started. Returns its process, its URL and the queue of its
    arrivals ((status change id, time) each)."""
    import multiprocessing

    os.environ["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ["SMS_BACKEND"] = "console"
    os.environ["EMAIL_URL"] = "consolemail://"
    _setup.recreate_database(database_url)
    _setup.configure(database_url, redis_url)
    _setup.migrate()
    context = multiprocessing.get_context("spawn")
    ports, arrivals = context.Queue(), context.Queue()
    receiver = context.Process(target=serve_receiver, args=(ports, arrivals), daemon=True)
    receiver.start()
    return receiver, f"http://127.0.0.1:{ports.get(timeout=30)}/hooks", arrivals


def make_data(parcels: int, drivers: int, receiver_url: str):
    """A brand sending webhooks to the receiver, SMS and email on going out
    for delivery; its parcels in transit, on today's routes; an API key."""
    from django.utils import timezone

    from notifications.models import BrandNotificationSettings
    from shipments import keys, services
    from shipments.models import Brand, Driver, EventSource, Route, Stop
    from shipments.services import NewEvent

    brand = Brand.objects.create(
        name="Rush Parcels",
        slug="rush",
        support_email="help@rush.example",
        webhook_url=receiver_url,
        webhook_secret=SECRET,
    )
    BrandNotificationSettings.objects.create(
        brand=brand,
        sms_statuses=["out_for_delivery"],
        email_statuses=["out_for_delivery"],
        webhook_statuses=["out_for_delivery"],
    )
    now = timezone.now()
    routes = [
        Route.objects.create(
            driver=Driver.objects.create(brand=brand, ref=f"drv-{n}", last_lat=51.5, last_lng=-0.12),
            date=timezone.localdate(),
        )
        for n in range(drivers)
    ]
    tokens, numbers = [], []
    began = time.monotonic()
    for n in range(parcels):
        shipment, _ = services.create_shipment(
            brand=brand,
            tracking_number=f"RP{n:07d}",
            **_setup.parcel_fields(now),
        )
        Stop.objects.create(route=routes[n % drivers], shipment=shipment, sequence=n // drivers + 1)
        tokens.append(shipment.public_token)
        numbers.append(shipment.tracking_number)
        if n and n % 1000 == 0:
            print(f"  {n} parcels ({n / (time.monotonic() - began):.0f}/s)", flush=True)
    scanned = now - dt.timedelta(hours=2)
    for start in range(0, parcels, 1000):
        services.record_brand_events(
            brand=brand,
            items=[
                (number, NewEvent(status="in_transit", occurred_at=scanned, source=EventSource.API, external_id="hub"))
                for number in numbers[start : start + 1000]
            ],
        )
    _, raw_key = keys.create_api_key(brand=brand, name="rush")
    return tokens, numbers, [route.driver.ref for route in routes], raw_key


def warm_up(base: str, key: str, number: str, hooks: dict) -> None:
    event = {"tracking_number": number, "status": "out_for_delivery", "external_id": "warm-up"}
    event["occurred_at"] = dt.datetime.now(dt.UTC).isoformat()
    request = urllib.request.Request(
        base + "/api/v1/events",
        data=json.dumps({"events": [event]}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=30).read()
    deadline = time.monotonic() + 60
    while not hooks:
        if time.monotonic() > deadline:
            sys.exit("the warm-up parcel's webhook never came: is the worker running? see its log")
        time.sleep(0.1)


def start_celery(log_path: Path, *arguments: str, niceness: int = 0) -> subprocess.Popen:
    """A Celery worker or beat, as the Procfile runs them (``niceness``: the
    Procfile's ``nice -n``)."""
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    command = [_setup.PYTHON, "-m", "celery", "-A", "tracking_portal", *arguments, "--loglevel", "WARNING"]
    if niceness:
        command = ["nice", "-n", str(niceness), *command]
    env = {**os.environ, "PYTHONPATH": str(_setup.ROOT), "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        command, cwd=_setup.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
