"""manage.py import_shipments FILE --brand SLUG [--dry-run] [--map HEADER=COLUMN ...]

Exit status: 0 when every row was imported or already there; 1 when some
rows were refused (the others were imported, and each refused row is
printed with its line in the file); 2 when nothing could be read (no such
brand, a file that is not CSV, too big, or has no tracking_number column).
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from shipments import imports
from shipments.models import Brand

# A progress line at most this often, on stderr.
PROGRESS_SECONDS = 1.0


class Command(BaseCommand):
    help = "Import shipments from a CSV file into a brand; a tracking number already there is left as it is."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8 (with or without BOM), header on line 1.")
        parser.add_argument("--brand", required=True, help="The brand's slug.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row and write nothing.")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="HEADER=COLUMN",
            help="Read the file's column HEADER as the standard COLUMN (repeatable): "
            + ", ".join(imports.STANDARD_COLUMNS),
        )

    def handle(self, *args, file, brand, dry_run, map, **options):
        found = Brand.objects.filter(slug=brand).first()
        if found is None:
            raise CommandError(f"No brand {brand!r}.", returncode=2)
        last = [time.monotonic()]

        def progress(report: imports.ImportReport) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_SECONDS:
                last[0] = now
                self.stderr.write(f"line {report.last_line:,}: " + _counts(report))

        try:
            mapping = imports.parse_mapping(map)
            with open(file, "rb") as source:
                report = imports.import_csv(
                    brand=found, source=source, mapping=mapping, dry_run=dry_run, on_progress=progress
                )
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.", returncode=2) from None
        except imports.FileRefused as refused:
            raise CommandError(f"{file}: {refused} Nothing was imported.", returncode=2) from None

        if report.ignored_columns:
            self.stdout.write("Ignored columns: " + ", ".join(report.ignored_columns))
        for refusal in report.refused:
            self.stdout.write(f"line {refusal.line}: refused: {refusal.reason}")
        if report.refused_count > len(report.refused):
            self.stdout.write(f"… and {report.refused_count - len(report.refused):,} more refused rows.")
        for line in report.differing:
            self.stdout.write(f"line {line}: already there with other values; left as it is.")
        summary = ("Dry run, nothing written: " if dry_run else "") + _counts(report) + "."
        self.stdout.write(summary)
        if report.refused_count:
            self.stdout.flush()
            sys.exit(1)


def _counts(report: imports.ImportReport) -> str:
    created = "would create" if report.dry_run else "created"
    return (
        f"{created} {report.created:,}, unchanged {report.unchanged:,}, refused {report.refused_count:,}"
        f" (of {report.rows:,} rows)"
    )
