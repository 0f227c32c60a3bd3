"""Replay recorded delivery days through the ETA and print its errors by
stops ahead, beside the promised window's midpoint and a constant-speed
estimate (shipments.eta_scoring says how each is made).

``--simulate N`` replays N simulated days (shipments.demo_day, seeded) of a
few drivers; the portal's own recorded days (routes, pings, visits and
scans) are replayed per brand, in the brand's time zone. The first day of
each set only teaches: with no history the model is the constant-speed
estimate.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shipments.demo_day import World
from shipments.eta_fair import fair_table, losses
from shipments.eta_history import brand_tz, recorded_days
from shipments.eta_scoring import BUCKETS, backtest, beats, score, table
from shipments.models import Brand, Driver

# The targets for the nearest stops (1 to 3 ahead).
NEAR = ("1", "2-3")
NEAR_MAE_MIN = 5.0
NEAR_INSIDE = 0.80
NEAR_WIDTH_MIN = 30.0


class Command(BaseCommand):
    help = "Replay recorded (and simulated) delivery days through the ETA and print its errors by stops ahead."

    def add_arguments(self, parser):
        parser.add_argument("--simulate", type=int, default=0, help="Also replay this many simulated days.")
        parser.add_argument("--drivers", type=int, default=4, help="Simulated drivers a day.")
        parser.add_argument("--seed", type=int, default=1, help="The simulator's seed.")
        parser.add_argument("--brand", help="Replay only this brand's recorded days (its slug).")
        parser.add_argument("--days", type=int, default=28, help="Recorded days to replay, up to yesterday.")
        parser.add_argument("--every", type=float, default=60.0, help="Seconds between the replay's recomputes.")
        parser.add_argument("--no-recorded", action="store_true", help="Replay the simulated days only.")
        parser.add_argument(
            "--check", action="store_true", help="Exit non-zero when the simulated days miss the targets."
        )

    def handle(self, *args, simulate, drivers, seed, brand, days, every, no_recorded, check, **options):
        if simulate < 0 or drivers < 1 or days < 1 or every <= 0:
            raise CommandError("--simulate must be 0 or more; --drivers, --days and --every must be positive.")
        if check and simulate < 2:
            raise CommandError("--check needs --simulate 2 or more (the first day only teaches).")
        missed = []
        if simulate:
            world = World(seed=seed, drivers=drivers)
            simulated = world.days(dt.date(2026, 11, 2), simulate)
            rows = backtest(simulated, every_s=every)
            self.report(f"Simulated: {simulate} days x {drivers} drivers (seed {seed})", rows)
            missed = self.targets(rows)
        if not no_recorded:
            brands = Brand.objects.order_by("slug")
            if brand:
                brands = brands.filter(slug=brand)
                if not brands.exists():
                    raise CommandError(f"No brand {brand!r}.")
            for one in brands:
                tz = brand_tz(one)
                today = timezone.now().astimezone(tz).date()
                found = recorded_days(
                    driver_ids=Driver.objects.filter(brand=one).values_list("pk", flat=True),
                    since=today - dt.timedelta(days=days),
                    until=today,
                    tz=tz,
                )
                found = [d for d in found if any(s.arrived_at for s in d.stops) and d.pings]
                if not found:
                    if brand:
                        self.stdout.write(f"{one.slug}: no recorded days with pings and arrivals to replay.")
                    continue
                self.report(f"Recorded: {one.slug}, {len(found)} driver-days", backtest(found, every_s=every))
        if check and missed:
            raise CommandError("Targets missed: " + "; ".join(missed))

    def report(self, title: str, rows) -> None:
        self.stdout.write(f"\n## {title}\n")
        if not rows:
            self.stdout.write("Nothing to score (a single day only teaches).")
            return
        cells = score(rows)
        self.stdout.write(table(cells))
        for name in ("promised", "constant"):
            won = beats(cells, name)
            lines = []
            for b in BUCKETS:
                if b in won:
                    lost = [figure for figure, ok in won[b].items() if not ok]
                    lines.append(f"{b}: " + ("all" if not lost else "all but " + ", ".join(lost)))
            self.stdout.write(f"\nModel beats {name} on: " + "; ".join(lines))
        self.stdout.write(
            "\nFair comparison (model / baseline, then the winner): each baseline's window calibrated"
            " from its own past errors as the model's is, and the share inside with both at one width.\n"
        )
        self.stdout.write(fair_table(cells))
        lost = losses(cells)
        self.stdout.write(
            "\nModel wins every fair contest." if not lost else "\nModel does not win: " + "; ".join(lost)
        )

    def targets(self, rows) -> list[str]:
        """The near stops' targets, as the lines that say where they were missed."""
        cells = score(rows)
        missed = []
        for b in NEAR:
            cell = cells.get(("model", b))
            if cell is None:
                missed.append(f"{b}: no estimates")
                continue
            if cell.mae_min > NEAR_MAE_MIN:
                missed.append(f"{b}: MAE {cell.mae_min:.1f} min")
            if cell.inside < NEAR_INSIDE:
                missed.append(f"{b}: {cell.inside:.0%} inside")
            if cell.width_min > NEAR_WIDTH_MIN:
                missed.append(f"{b}: window {cell.width_min:.0f} min")
        self.stdout.write(
            "\nTargets (1-3 stops ahead: MAE <= 5 min, >= 80% inside, window <= 30 min): "
            + ("met" if not missed else "missed: " + "; ".join(missed))
        )
        return missed
