"""The tracking page's throughput against a trivial view on the same server.

    .venv/bin/python bench/tracking_page.py [--duration 10] [--rounds 3] [--shipments 3000]

One uvicorn process serves the portal (DEBUG off, PostgreSQL, Redis) plus a
trivial Django view (bench/page_urls.py); wrk drives it on loopback with 32
connections. Four variants, alternating for --rounds rounds so the
machine's noise hits all of them, medians printed:

- bare: a bare ASGI callable answering "ok" in the same process
  (bench/bare_asgi.py), the server's own limit;
- trivial: the baseline view, through the same middleware;
- warm: /t/<token>/ of a shipment with 30 events, out for delivery on a
  route, its rendered page in Redis;
- widget warm: the same shipment's status widget frame, /embed/t/<token>/
  (its brand has an embed origin), kept in the same page cache;
- just changed: every request is the first for a shipment whose page was
  invalidated the way record_event does (wrk walks a list of shipments,
  each with 30 events, once each).

Targets: warm >= 80% of trivial, just changed >= 35%, widget warm's ratio
>= warm's. It makes its own database (dropped and created: --database-url)
and uses --redis-url.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup

PORT = 8440
EMBED_ORIGIN = "https://shop.example.com"
CONNECTIONS = 32
THREADS = 2
STOPS_PER_ROUTE = 100

WALK_SCRIPT = """
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  paths = {}
  for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
  i = id
end
function request()
  local path = paths[(i %% #paths) + 1]
  i = i + %(threads)d
  return wrk.format("GET", path, {["Accept-Language"] = "en"})
end
"""


def make_data(count: int):
    """A brand (its widget framed by EMBED_ORIGIN), drivers with routes of
    STOPS_PER_ROUTE stops, and count + 1 shipments out for delivery, each
    with 30 events, through the services."""
    from django.utils import timezone

    from shipments import services
    from shipments.models import Brand, Driver, Route, Stop
    from shipments.services import NewEvent

    brand = Brand.objects.create(
        name="Bench Parcels",
        slug="bench",
        support_email="help@bench.example",
        default_timezone="Europe/London",
        embed_origins=EMBED_ORIGIN,
    )
    now = timezone.now()
    start = now - dt.timedelta(hours=30)
    story = [("info_received", "Label created", "Reading")] + [
        ("in_transit", f"Scanned at hub {n}", "Reading" if n < 10 else "London") for n in range(27)
    ]
    story += [("in_transit", "Arrived at the London depot", "London"), ("out_for_delivery", "On the van", "London")]
    tokens = []
    route = None
    began = time.monotonic()
    for n in range(count + 1):
        shipment, _ = services.create_shipment(
            brand=brand,
            tracking_number=f"BP{n:07d}",
            **_setup.parcel_fields(now),
        )
        services.record_events(
            shipment_id=shipment.pk,
            events=[
                NewEvent(
                    status=status,
                    occurred_at=start + dt.timedelta(hours=i),
                    external_id=f"e{i}",
                    carrier_code="SCAN",
                    description=text,
                    location_city=city,
                )
                for i, (status, text, city) in enumerate(story)
            ],
        )
        if n % STOPS_PER_ROUTE == 0:
            driver = Driver.objects.create(
                brand=brand, ref=f"drv-{n}", last_lat=51.5, last_lng=-0.12, last_position_at=now
            )
            route = Route.objects.create(driver=driver, date=timezone.localdate())
        Stop.objects.create(route=route, shipment=shipment, sequence=n % STOPS_PER_ROUTE + 1)
        tokens.append(shipment.public_token)
        if n and n % 500 == 0:
            print(f"  {n} shipments ({n / (time.monotonic() - began):.0f}/s)", flush=True)
    return tokens


def open_database(database_url: str, redis_url: str) -> None:
    """A new, migrated database for this run, and Django set up on it."""
    _setup.recreate_database(database_url)
    _setup.configure(database_url, redis_url)
    _setup.migrate()


def wrk(url: str, duration: int, script: str | None = None) -> dict:
    command = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{duration}s", "--latency"]
    command += ["-H", "Accept-Language: en"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout

    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency_ms("50%"),
        "p99": latency_ms("99%"),
        "requests": requests,
        "errors": int(errors.group(1)) if errors else 0,
    }


def check_widget(url: str) -> None:
    """The frame is served (not the frames' 404) and framed by EMBED_ORIGIN."""
    request = urllib.request.Request(url, headers={"Accept-Language": "en"})
    with urllib.request.urlopen(request, timeout=5) as response:
        policy = response.headers["Content-Security-Policy"]
    if f"frame-ancestors {EMBED_ORIGIN}" not in policy:
        raise RuntimeError(f"the widget frame is not framed by {EMBED_ORIGIN}: {policy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shipments", type=int, default=3000, help="shipments for the just-changed walk")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_page")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()

    open_database(args.database_url, args.redis_url)
    print(f"Making {args.shipments + 1} shipments with 30 events each…", flush=True)
    tokens = make_data(args.shipments)
    hot, walk = tokens[0], tokens[1:]

    # As record_event's announcement does: the epochs moved on and each
    # page's message sent, which also drops the server's local copy.
    from pages.live.hub import CHANGED, publish

    server = _setup.Server(PORT, args.database_url, args.redis_url, app="bench.bare_asgi:application")
    results: dict[str, list[dict]] = {"bare": [], "trivial": [], "warm": [], "widget warm": [], "just changed": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            paths = Path(folder) / "paths.txt"
            paths.write_text("".join(f"/t/{token}/\n" for token in walk))
            script = Path(folder) / "walk.lua"
            script.write_text(WALK_SCRIPT % {"paths": paths, "threads": THREADS})
            wrk(server.base + "/bench/trivial/", 2)  # warm the server up
            wrk(server.base + f"/t/{hot}/", 2)
            wrk(server.base + f"/embed/t/{hot}/", 2)
            check_widget(server.base + f"/embed/t/{hot}/")
            wrk(server.base + "/bench/bare/", 2)
            for round_number in range(1, args.rounds + 1):
                results["bare"].append(wrk(server.base + "/bench/bare/", args.duration))
                results["trivial"].append(wrk(server.base + "/bench/trivial/", args.duration))
                results["warm"].append(wrk(server.base + f"/t/{hot}/", args.duration))
                results["widget warm"].append(wrk(server.base + f"/embed/t/{hot}/", args.duration))
                publish(dict.fromkeys(walk, CHANGED), invalidate=True)
                fresh = wrk(server.base + f"/t/{walk[0]}/", args.duration, str(script))
                if fresh["requests"] > len(walk):
                    print(
                        f"  warning: {fresh['requests']} requests walked past {len(walk)} shipments; raise --shipments"
                    )
                results["just changed"].append(fresh)
                print(
                    f"round {round_number}: "
                    + ", ".join(f"{name} {runs[-1]['rps']:.0f} req/s" for name, runs in results.items()),
                    flush=True,
                )
    finally:
        server.stop()

    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p99")}
        for name, runs in results.items()
    }
    errors = sum(run["errors"] for runs in results.values() for run in runs)
    base = medians["trivial"]["rps"]
    print()
    print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{args.duration}s, medians of {args.rounds} rounds, one uvicorn process")
    print(f"{'variant':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    for name, m in medians.items():
        print(f"{name:<14}{m['rps']:>9.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['rps'] / base:>8.2f}")
    print(f"non-2xx responses: {errors}")
    print(
        f"warm / trivial = {medians['warm']['rps'] / base:.2f} (target >= 0.80); "
        f"just changed / trivial = {medians['just changed']['rps'] / base:.2f} (target >= 0.35)"
    )
    print(
        f"widget warm / trivial = {medians['widget warm']['rps'] / base:.2f} "
        f"(target >= the page's warm {medians['warm']['rps'] / base:.2f})"
    )
    bare = medians["bare"]["rps"]
    print(
        f"warm / bare ASGI = {medians['warm']['rps'] / bare:.2f} (target >= 0.35); "
        f"widget warm / bare ASGI = {medians['widget warm']['rps'] / bare:.2f}; "
        f"trivial / bare ASGI = {base / bare:.2f}"
    )


if __name__ == "__main__":
    main()
