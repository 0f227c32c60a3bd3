"""manage.py analytics_backfill [--brand SLUG] [--from YYYY-MM-DD] [--to YYYY-MM-DD]

Counts the daily rollup of every day of the brand's (or every brand's)
history from scratch, printing a progress line; run again, it writes the
same rows. Without --from, from the brand's first parcel; without --to, up
to today in the brand's time zone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics import backfill
from shipments.models import Brand


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Build the analytics rollup of past days (a portal's first rollup); safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--brand", help="The brand's slug (default: every brand).")
        parser.add_argument("--from", dest="first", type=_date, help="First day, YYYY-MM-DD (in the brand's zone).")
        parser.add_argument("--to", dest="last", type=_date, help="Last day, included, YYYY-MM-DD.")

    def handle(self, *args, brand, first, last, **options):
        if first and last and first > last:
            raise CommandError("--from must be on or before --to.")
        brands = Brand.objects.order_by("slug")
        if brand:
            brands = brands.filter(slug=brand)
            if not brands.exists():
                raise CommandError(f"No brand {brand!r}.")
        started = timezone.now()
        total = 0
        for each in brands:
            known = backfill.brand_days(each)
            if known is None and not (first and last):
                self.stdout.write(f"{each.slug}: no parcels.")
                continue
            start, end = first or known[0], last or known[1]
            if start > end:
                self.stdout.write(f"{each.slug}: no days from {start} to {end}.")
                continue
            began = time.monotonic()

            def progress(done: backfill.Progress, began=began) -> None:
                seconds = time.monotonic() - began
                self.stderr.write(
                    f"{done.brand.slug}: {done.days_done:,}/{done.days:,} days, "
                    f"{done.rows:,} rollup rows, {seconds:.0f} s"
                )

            rows = backfill.backfill_brand(each, start, end, on_progress=progress)
            total += rows
            self.stdout.write(f"{each.slug}: {start} to {end}: {rows:,} rollup rows.")
        backfill.start_watermark(started)
        self.stdout.write(f"Done: {total:,} rollup rows.")
