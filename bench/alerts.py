"""A simulated week replayed through the portal: how well the alert rules
find what went wrong, how soon, and what detection on pings costs.

    .venv/bin/python bench/alerts.py [--seed 1] [--drivers 4] [--stops-per-day 200] [--days 7]
    .venv/bin/python bench/alerts.py --quick        # a smoke run: 2 drivers, 40 stops a day, 1 day

The week (bench/alert_world.py: several drivers, hundreds of stops a day,
GPS noise and ping intervals, doorstep waits that end in a scan, faults of
every rule-detected kind and hard negatives beside them) is replayed on a
simulated clock through the domain's own entry points: shipments are made
with ``services.create_shipment``, scans go through
``services.record_brand_events`` (what POST /api/v1/events calls), promised
windows and ETAs change through ``edits.edit_shipment``, the day's routes
through ``drivers.set_route`` and every ping through
``drivers.record_locations`` (one ping a call, as the driver app posts
them), with recorded_at on the replayed clock. Beat is
``alerts.evaluate_open_shipments(now=...)`` every 30 s of replayed time; after
each scan or edit, ``alerts.evaluate_alerts`` runs for the shipments it
changed at that moment, as the after-commit task does (whose own receiver,
which would use the wall clock, is disconnected for the replay).

The truth comes from the simulator (bench/alert_truth.py), never from the
code under test. Per kind: precision (alerts that match a span in which the
rule should be open / alerts opened), recall (spans caught / spans) and the
delay from the rule's moment to the alert's opened_at (p50, p95, max). The
alerts that matched nothing and the spans missed are listed by the case the
simulator put there. Then, in the same run, a fixed driver-day of pings is
recorded with ``settings.ALERTS_DETECT_ON_PINGS`` off and on, rounds
alternating, and the medians' ratio printed.

Targets: precision and recall >= 0.95 for every rule-detected kind, p95 delay
<= 60 s, pings with detection on >= 0.7 of the rate without it. ``--strict``
exits non-zero when one is missed. It makes and drops its own database
(test_<name> of DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_alerts); what the receivers
queue goes to REDIS_URL (default redis://127.0.0.1:6379/4, emptied at the end).
"""

import argparse
import bisect
import dataclasses
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracking_portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_alerts")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/4")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import alert_truth  # noqa: E402
from bench.alert_world import Generator, World  # noqa: E402
from shipments import alerts, drivers, edits, services, signals  # noqa: E402
from shipments.alert_rules import Thresholds  # noqa: E402
from shipments.models import Alert, Brand, BrandAlertSettings, EventSource, Shipment  # noqa: E402
from shipments.services import NewEvent  # noqa: E402

BEAT = timedelta(seconds=30)
TARGET_RATE, TARGET_RATIO, TARGET_P95_S = 0.95, 0.7, 60.0


class Replay:
    """The portal, driven by the world's timeline on the replayed clock."""

    def __init__(self, brand: Brand, world: World, upload_every: int):
        self.brand, self.world, self.upload_every = brand, world, timedelta(seconds=upload_every)
        self.ids: dict[str, int] = {}
        self.ping_seconds = self.beat_seconds = 0.0
        self.pings = self.uploads = self.beats = 0
        # (wall clock, replayed clock) as each step began: an alert's
        # created_at (wall clock) says at which replayed moment it was written.
        self.clocks: list[tuple[datetime, datetime]] = []
        self.held: dict[str, list] = defaultdict(list)

    def run(self) -> None:
        first = self.world.timeline[0][0]
        tick = first - timedelta(seconds=first.timestamp() % BEAT.total_seconds())
        for at, _, what, payload in self.world.timeline:
            while tick <= at:
                self.beat(tick)
                tick += BEAT
            self.clocks.append((timezone.now(), at))
            self.apply(at, what, payload)
        while tick <= self.world.ends_at:
            self.beat(tick)
            tick += BEAT

    def replayed_at(self, wall: datetime) -> datetime:
        """The replayed moment of the step during which ``wall`` fell."""
        index = bisect.bisect_right(self.clocks, (wall, datetime.max.replace(tzinfo=UTC))) - 1
        return self.clocks[max(index, 0)][1]

    def beat(self, now) -> None:
        self.clocks.append((timezone.now(), now))
        start = time.perf_counter()
        alerts.evaluate_open_shipments(now=now)
        self.beat_seconds += time.perf_counter() - start
        self.beats += 1

    def apply(self, at, what, payload) -> None:
        if what == "ping":
            # The app sends what it holds once the oldest is upload_every old
            # (at once when that is 0).
            held = self.held[payload.driver]
            held.append(payload)
            if payload.recorded_at - held[0].recorded_at >= self.upload_every:
                start = time.perf_counter()
                drivers.record_locations(brand=self.brand, driver_ref=payload.driver, pings=[as_ping(p) for p in held])
                self.ping_seconds += time.perf_counter() - start
                self.pings += len(held)
                self.uploads += 1
                held.clear()
        elif what == "create":
            self.ids[payload.number] = create(self.brand, payload)
        elif what == "events":
            services.record_brand_events(brand=self.brand, items=[(e.number, as_event(e)) for e in payload])
            alerts.evaluate_alerts(shipment_ids=[self.ids[e.number] for e in payload], now=at)
        elif what == "edit":
            number, fields = payload
            edits.edit_shipment(shipment=Shipment.objects.get(pk=self.ids[number]), fields=fields)
            alerts.evaluate_alerts(shipment_ids=[self.ids[number]], now=at)
        elif what == "route":
            driver, day, numbers = payload
            drivers.set_route(brand=self.brand, driver_ref=driver, date=day, tracking_numbers=numbers)


def create(brand, parcel) -> int:
    shipment, _ = services.create_shipment(
        brand=brand,
        tracking_number=parcel.number,
        destination_lat=parcel.lat,
        destination_lng=parcel.lng,
        destination_city="London",
        destination_country="GB",
        promised_window_start=parcel.window_start,
        promised_window_end=parcel.window_end,
        eta=parcel.eta,
    )
    return shipment.pk


def as_event(e) -> NewEvent:
    return NewEvent(
        status=e.status,
        substatus=e.substatus,
        occurred_at=e.occurred_at,
        source=EventSource.DRIVER if e.lat is not None else EventSource.CARRIER,
        external_id=e.external_id,
        location_lat=e.lat,
        location_lng=e.lng,
    )


def as_ping(p) -> drivers.Ping:
    return drivers.Ping(lat=p.lat, lng=p.lng, recorded_at=p.recorded_at, accuracy_m=p.accuracy_m, speed_mps=p.speed_mps)


# -- scoring ------------------------------------------------------------------


def score(world: World, truth: list[alert_truth.Episode], opened: list[tuple]):
    """Match each alert (number, kind, opened_at, seen_at, detail) to a span
    of its (parcel, kind): the first alert inside a span is a hit, anything
    else is a false alert."""
    spans = defaultdict(list)
    for episode in truth:
        spans[(episode.number, episode.kind)].append([episode, None])
    false_alerts = []
    for number, kind, opened_at, seen_at, detail in sorted(opened, key=lambda row: row[2]):
        for slot in spans.get((number, kind), []):
            episode = slot[0]
            if slot[1] is None and episode.start - alert_truth.EARLY <= opened_at <= episode.end:
                slot[1] = (opened_at, seen_at)
                break
        else:
            why = why_false(spans.get((number, kind), []), opened_at)
            false_alerts.append((kind, number, opened_at, why, detail))
    rows = {}
    for kind in alert_truth.RULE_KINDS:
        slots = [slot for (_, k), items in spans.items() if k == kind for slot in items]
        hits = [slot for slot in slots if slot[1] is not None]
        wrong = [f for f in false_alerts if f[0] == kind]
        rows[kind] = {
            "truth": len(slots),
            "alerts": len(hits) + len(wrong),
            "precision": len(hits) / (len(hits) + len(wrong)) if hits or wrong else None,
            "recall": len(hits) / len(slots) if slots else None,
            "delays": sorted((slot[1][0] - slot[0].start).total_seconds() for slot in hits),
            "seen": sorted(max((slot[1][1] - slot[0].start).total_seconds(), 0) for slot in hits),
            "missed": [slot[0] for slot in slots if slot[1] is None],
            "false": wrong,
        }
    return rows


def why_false(slots, opened_at) -> str:
    if not slots:
        return "no span of this kind on the parcel"
    nearest = min(slots, key=lambda s: abs((s[0].start - opened_at).total_seconds()))[0]
    if opened_at < nearest.start:
        return f"opened before the rule's moment (up to {seconds(nearest.start - opened_at)})"
    if opened_at > nearest.end:
        return "opened after the span ended"
    return "a second alert within one span"


def seconds(delta) -> str:
    s = delta.total_seconds()
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def percentile(values, q):
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def report(rows, world: World, beat_note: str, explain: int) -> bool:
    ok = True
    head = ("kind", "truth", "alerts", "precision", "recall", "p50 s", "p95 s", "max s", "p95 seen s")
    widths = (18, 6, 6, 9, 7, 7, 7, 8, 10)
    print(
        "\n"
        + " ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(head, widths, strict=True)))
    )
    for kind, row in rows.items():
        d = row["delays"]
        cells = [kind, row["truth"], row["alerts"], fmt(row["precision"]), fmt(row["recall"])]
        cells += [fmt(percentile(d, q), 1) for q in (0.5, 0.95, 1.0)] + [fmt(percentile(row["seen"], 0.95), 1)]
        print(
            " ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        )
    print(f"\ntargets ({beat_note}):")
    for kind, row in rows.items():
        p95 = percentile(row["delays"], 0.95)
        checks = [
            ("precision", fmt(row["precision"], 2), f">= {TARGET_RATE}", (row["precision"] or 0) >= TARGET_RATE),
            ("recall", fmt(row["recall"], 2), f">= {TARGET_RATE}", (row["recall"] or 0) >= TARGET_RATE),
            ("p95 delay", fmt(p95, 1), f"<= {TARGET_P95_S:.0f} s", p95 is not None and p95 <= TARGET_P95_S),
        ]
        for name, value, goal, passed in checks:
            ok &= passed
            print(f"  {kind:<18} {name:<10} {value:>7} {goal:<9} {'PASS' if passed else 'FAIL'}")
    for kind, row in rows.items():
        missed = Counter(f"{world.cases.get(e.number, '?')}" for e in row["missed"])
        wrong = Counter(f"{world.cases.get(f[1], '?')}: {f[3]}" for f in row["false"])
        for label, counter in (("missed", missed), ("false alert", wrong)):
            for what, count in counter.most_common():
                print(f"  {kind} {label}: {count} x {what}")
        for e in row["missed"][:explain]:
            print(f"    missed {e.number} ({e.case}): from {e.start:%a %H:%M:%S} to {e.end:%a %H:%M:%S}")
        for _, number, opened_at, why, detail in row["false"][:explain]:
            print(f"    false {number} ({world.cases.get(number)}): opened {opened_at:%a %H:%M:%S}, {why}; {detail}")
    return ok


def fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# -- the ping rate ------------------------------------------------------------


def ping_rate(brand: Brand, world: World, limit: int, rounds: int) -> tuple[float, float]:
    """One driver-day's first ``limit`` pings, with that day's scans between
    them (not timed), recorded onto fresh copies of its route, detection off
    and on alternating. Returns the medians in pings/s (off, on)."""
    driver, day, numbers = world.rate_day
    pings = [p for at, _, what, p in world.timeline if what == "ping" and p.driver == driver and at.date() == day]
    pings = pings[:limit]
    last = pings[-1].recorded_at
    scans = [
        (at, e) for at, _, what, batch in world.timeline if what == "events" for e in batch
        if e.number in set(numbers) and e.status in ("delivered", "failed_attempt") and at.date() == day and at <= last
    ]  # fmt: skip
    rates = {False: [], True: []}
    for round_no in range(rounds):
        for detect in (False, True):
            copy = {n: f"R{round_no}{int(detect)}-{n}" for n in numbers}
            for n in numbers:
                create(brand, dataclasses.replace(world.parcels[n], number=copy[n]))
            first = pings[0].recorded_at - timedelta(minutes=20)
            services.record_brand_events(
                brand=brand,
                items=[
                    (copy[n], NewEvent(status="out_for_delivery", occurred_at=first, external_id=f"o-{copy[n]}"))
                    for n in numbers
                ],
            )
            ref = f"rate-{round_no}-{int(detect)}"
            drivers.set_route(brand=brand, driver_ref=ref, date=day, tracking_numbers=[copy[n] for n in numbers])
            queue = list(scans)
            elapsed = 0.0
            with override_settings(ALERTS_DETECT_ON_PINGS=detect):
                for p in pings:
                    while queue and queue[0][0] <= p.recorded_at:
                        _, e = queue.pop(0)
                        services.record_brand_events(brand=brand, items=[(copy[e.number], as_event(e))])
                    start = time.perf_counter()
                    drivers.record_locations(brand=brand, driver_ref=ref, pings=[as_ping(p)])
                    elapsed += time.perf_counter() - start
            rates[detect].append(len(pings) / elapsed)
            state = "on " if detect else "off"
            print(f"  round {round_no + 1}/{rounds}, detection {state}: {rates[detect][-1]:,.0f} pings/s", flush=True)
    return statistics.median(rates[False]), statistics.median(rates[True])


def report_ping_rate(brand: Brand, world: World, limit: int, rounds: int) -> bool:
    print(f"\nping rate ({limit} pings of one driver-day, one per call, {rounds} rounds each):")
    off, on = ping_rate(brand, world, limit, rounds)
    ratio = on / off
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"  medians: detection off {off:,.0f} pings/s, on {on:,.0f} pings/s")
    print(f"  ping rate with detection on / off: {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
    return ratio >= TARGET_RATIO


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drivers", type=int, default=4)
    parser.add_argument("--stops-per-day", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument(
        "--ofd-hours", type=int, default=9, help="the brand's out-for-delivery stuck limit (full-day routes)"
    )
    parser.add_argument("--rate-pings", type=int, default=1000, help="pings per round of the ping-rate comparison")
    parser.add_argument("--rate-rounds", type=int, default=5)
    parser.add_argument("--upload-every", type=int, default=30, help="seconds of pings the app sends at once (0: each)")
    parser.add_argument("--explain", type=int, default=5, help="list this many false alerts and misses of each kind")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 drivers, 40 stops a day, 1 day")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.drivers, args.stops_per_day, args.days, args.rate_pings, args.rate_rounds = 2, 40, 1, 300, 2

    world = Generator(seed=args.seed, drivers=args.drivers, stops_per_day=args.stops_per_day, days=args.days).week()
    kinds = Counter(what for _, _, what, _ in world.timeline)
    print(
        f"seed {args.seed}: {args.drivers} drivers, {args.stops_per_day} stops a day, {args.days} days: "
        f"{kinds['create']} parcels, {sum(len(p) for _, _, w, p in world.timeline if w == 'events')} scans, "
        f"{kinds['ping']} pings, {kinds['edit']} edits; {connection.vendor}",
        flush=True,
    )
    if not hasattr(settings, "ALERTS_DETECT_ON_PINGS"):
        print("note: settings.ALERTS_DETECT_ON_PINGS does not exist: no detection on pings to switch")
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    receiver = signals.shipments_changed.disconnect(dispatch_uid="shipments.evaluate_alerts")
    try:
        brand = Brand.objects.create(name="Bench alerts", slug="bench-alerts")
        if args.ofd_hours:
            BrandAlertSettings.objects.create(brand=brand, stuck_out_for_delivery_hours=args.ofd_hours)
        limits = BrandAlertSettings.objects.filter(brand=brand).first()
        limits = limits.thresholds() if limits else Thresholds()
        truth = alert_truth.episodes(world, limits)
        replay = Replay(brand, world, args.upload_every)
        started = time.perf_counter()
        replay.run()
        took = time.perf_counter() - started
        beat_ms = 1000 * replay.beat_seconds / replay.beats
        print(
            f"replayed in {took:.0f} s: {replay.beats:,} beats ({beat_ms:.1f} ms each), {replay.pings:,} pings in "
            f"{replay.uploads:,} calls ({replay.pings / replay.ping_seconds:,.0f}/s in record_locations)"
        )
        rows = Alert.objects.filter(shipment__brand=brand).values_list(
            "shipment__tracking_number", "kind", "opened_at", "created_at", "detail"
        )
        opened = [(n, kind, at, replay.replayed_at(created), detail) for n, kind, at, created, detail in rows]
        note = "beat every 30 s of replayed time, and after each scan or edit"
        ok = report(score(world, truth, opened), world, note, args.explain)
        if args.rate_rounds:
            ok &= report_ping_rate(brand, world, args.rate_pings, args.rate_rounds)
    finally:
        if receiver:
            from shipments.tasks import evaluate_alerts_after_changes

            signals.shipments_changed.connect(evaluate_alerts_after_changes, dispatch_uid="shipments.evaluate_alerts")
        if args.keep_db:
            print(f"database kept: {test_db}")
        else:
            connection.creation.destroy_test_db(test_db, verbosity=0)
        if os.environ.get("REDIS_URL"):
            import redis

            redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    if args.strict and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
