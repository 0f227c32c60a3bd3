"""CSV import of a brand's shipments, for the admin and ``manage.py
import_shipments``.

The rules, in the order a file meets them:

- The whole file is read once before anything is written: it must be
  UTF-8 text (a BOM is fine), CSV, at most MAX_BYTES and MAX_ROWS rows, with
  a header naming a tracking_number column (directly or by the mapping). A
  file that fails any of these is refused whole (``FileRefused``).
- Each row is then checked by the rules the API holds a new shipment to:
  the tracking number's form and the window's order (shipments.bounds), the
  model's own validators (E.164 phone, email, lengths), times with an offset
  within the stored range. A row that fails is refused with its line in the
  file (the header is line 1; a quoted newline in a cell counts as a line)
  and the others are still imported.
- A tracking number the brand already has is left as it is, as the API's
  create answers "200, unchanged": an import never changes an existing
  shipment. Such a row counts as unchanged; when its cells differ from the
  stored shipment the report names its line (``differing``), so that
  nobody believes a correction went in.
- Rows are written in batches of BATCH, each batch in its own transaction
  with one COPY and one insert (shipments.bulk.copy_insert), so a file
  stopped halfway is re-imported without harm. A new shipment here is what the API's create makes: the row
  alone, with its public token; nothing is announced or queued, since no
  page of it is open yet and no status changed.
- A dry run reads the same and writes nothing at all: no shipment, no
  outbox row, no value taken from a sequence.
"""

# The standard csv module and shipments.bulk rather than django-import-export:
# in one run of bench/imports.py (2026-12-02, load ~13 on 2 cores) it took
# 59 rows/s (88 for a dry run) where this module took 2,480 rows/s against
# bulk_create's 2,294: it looks each row up on its own, and its dry run
# writes in a transaction it rolls back (taking values from the sequences).

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import bounds, bulk
from .models import Brand, Shipment

# The columns understood without a mapping, and the field each fills.
STANDARD_COLUMNS = {
    "tracking_number": "tracking_number",
    "order_ref": "order_ref",
    "carrier": "carrier",
    "recipient_name": "recipient_name",
    "recipient_phone": "recipient_phone",
    "recipient_email": "recipient_email",
    "recipient_language": "recipient_language",
    "line1": "destination_line1",
    "line2": "destination_line2",
    "city": "destination_city",
    "postcode": "destination_postcode",
    "country": "destination_country",
    "window_start": "promised_window_start",
    "window_end": "promised_window_end",
}
COLUMN_OF_FIELD = {model_field: column for column, model_field in STANDARD_COLUMNS.items()}
TIME_COLUMNS = frozenset({"window_start", "window_end"})

# What one file may be: enough for a big day's shipments, small enough to
# read in one admin upload and to hold its tracking numbers in memory.
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
# Rows per transaction and per insert.
BATCH = 2_000
# How many refused or differing lines a report keeps (the counts are whole).
MAX_LISTED = 1_000

TRACKING_NUMBER = re.compile(bounds.TRACKING_NUMBER_PATTERN)
# How much of the file the first pass reads at a time.
READ_CHUNK = 1024 * 1024


class FileRefused(ValueError):
    """The file as a whole cannot be imported; nothing of it was written."""


class RowRefused(ValueError):
    """One row cannot be imported; the message says why."""


@dataclass(frozen=True)
class Refusal:
    line: int
    tracking_number: str
    reason: str


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    refused_count: int = 0
    refused: list[Refusal] = field(default_factory=list)
    differing_count: int = 0
    differing: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    last_line: int = 1

    def refuse(self, line: int, tracking_number: str, reason: str) -> None:
        self.refused_count += 1
        if len(self.refused) < MAX_LISTED:
            self.refused.append(Refusal(line, tracking_number, reason))

    def differs(self, line: int) -> None:
        self.differing_count += 1
        if len(self.differing) < MAX_LISTED:
            self.differing.append(line)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "unchanged": self.unchanged,
            "refused_count": self.refused_count,
            "refused": [[r.line, r.tracking_number, r.reason] for r in self.refused],
            "differing_count": self.differing_count,
            "differing": self.differing,
            "ignored_columns": self.ignored_columns,
            "last_line": self.last_line,
        }


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """``["Order No=order_ref", ...]`` as {header: standard column}."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        header, sep, column = pair.rpartition("=")
        if not sep or not header.strip() or not column.strip():
            raise FileRefused(f"A mapping is HEADER=COLUMN, not {pair!r}.")
        mapping[header.strip()] = column.strip()
    return mapping


def columns_for(header: Sequence[str], mapping: dict[str, str] | None = None) -> tuple[list[str | None], list[str]]:
    """The standard column each header cell fills (None: ignored) and the
    headers ignored. The mapping ({header: column}, "" to ignore one) comes
    first; a header named as a standard column (any case, spaces around)
    fills it."""
    mapping = {key.strip().casefold(): value for key, value in (mapping or {}).items()}
    names = [cell.strip().casefold() for cell in header]
    for key, column in mapping.items():
        if column and column not in STANDARD_COLUMNS:
            raise FileRefused(f"Cannot map to {column!r}: the columns are {', '.join(STANDARD_COLUMNS)}.")
        if key not in names:
            raise FileRefused(f"The mapping names a column {key!r} that the header (line 1) does not have.")
    targets: list[str | None] = []
    for name in names:
        if name in mapping:
            targets.append(mapping[name] or None)
        elif name in STANDARD_COLUMNS and name not in mapping.values():
            targets.append(name)
        else:
            targets.append(None)
    seen: set[str] = set()
    for target in targets:
        if target is None:
            continue
        if target in seen:
            raise FileRefused(f"Two columns of the header (line 1) fill {target}.")
        seen.add(target)
    if "tracking_number" not in seen:
        raise FileRefused("The header (line 1) has no tracking_number column; name one or map one to it.")
    ignored = [cell for cell, target in zip(header, targets, strict=True) if target is None and cell.strip()]
    return targets, ignored


def records(source: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the file line it starts on. csv counts the
    physical lines it has read, so a record's first line is one past the
    previous record's last, a quoted newline included."""
    source.seek(0)
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    previous_end = 0
    try:
        for cells in reader:
            yield previous_end + 1, cells
            previous_end = reader.line_num
    except csv.Error as error:
        raise FileRefused(f"Line {reader.line_num}: not readable as CSV ({error}).") from None
    finally:
        text.detach()


def check_file(source: BinaryIO, *, max_bytes: int = MAX_BYTES, max_rows: int = MAX_ROWS) -> list[str]:
    """Read the whole file once without writing anything: its size, its
    encoding (UTF-8), that it is text and CSV, its number of rows; the
    header it starts with."""
    source.seek(0, io.SEEK_END)
    size = source.tell()
    if size > max_bytes:
        raise FileRefused(f"The file is {size:,} bytes; the limit is {max_bytes:,}.")
    if size == 0:
        raise FileRefused("The file is empty: it needs a header line.")
    source.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    while chunk := source.read(READ_CHUNK):
        if b"\x00" in chunk:
            raise FileRefused("This is not a CSV file: it holds binary data.")
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as error:
            raise FileRefused(
                f"Line {line + chunk.count(b'\n', 0, error.start)}: the file is not UTF-8 text."
            ) from None
        line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileRefused(f"Line {line}: the file is not UTF-8 text (it ends mid-character).") from None
    header: list[str] | None = None
    count = 0
    for _, cells in records(source):
        if header is None:
            header = cells
        elif cells:
            count += 1
            if count > max_rows:
                raise FileRefused(f"The file has more than {max_rows:,} rows; split it.")
    if not header or not any(cell.strip() for cell in header):
        raise FileRefused("The first line must be a header naming the columns.")
    return header


def parse_time(column: str, value: str) -> datetime:
    """An ISO 8601 time with an offset, within the stored range, in UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RowRefused(f"{column}: {value!r} is not an ISO 8601 date and time.") from None
    if timezone.is_naive(moment):
        raise RowRefused(f"{column}: needs a time zone offset, like 2026-11-26T09:00:00+01:00.")
    if not bounds.in_time_range(moment):
        raise RowRefused(f"{column}: must be between {bounds.EARLIEST:%Y} and {bounds.LATEST:%Y}.")
    return moment.astimezone(UTC)


def row_fields(brand: Brand, targets: Sequence[str | None], cells: Sequence[str]) -> tuple[str, dict]:
    """A row's tracking number and model fields, or RowRefused."""
    if len(cells) > len(targets):
        raise RowRefused(f"The row has {len(cells)} cells; the header has {len(targets)}.")
    values = {target: cell.strip() for target, cell in zip(targets, cells, strict=False) if target is not None}
    tracking_number = values.pop("tracking_number", "")
    if not tracking_number:
        raise RowRefused("tracking_number is empty.")
    if len(tracking_number) > bounds.TRACKING_NUMBER_MAX_LENGTH or not TRACKING_NUMBER.match(tracking_number):
        raise RowRefused(
            f"tracking_number: at most {bounds.TRACKING_NUMBER_MAX_LENGTH} letters, digits, '.', '_' or '-',"
            " starting with a letter or digit."
        )
    fields: dict = {}
    for column, value in values.items():
        if column in TIME_COLUMNS:
            fields[STANDARD_COLUMNS[column]] = parse_time(column, value) if value else None
        elif column == "country":
            fields["destination_country"] = value.upper()
        else:
            fields[STANDARD_COLUMNS[column]] = value
    start, end = fields.get("promised_window_start"), fields.get("promised_window_end")
    if (start is None) != (end is None) and ("promised_window_start" in fields or "promised_window_end" in fields):
        raise RowRefused("window_start and window_end go together: give both or neither.")
    if start is not None and end is not None and not bounds.is_window(start, end):
        raise RowRefused(f"window_end: {bounds.WINDOW_ERROR}")
    check_model_rules(brand, tracking_number, fields)
    return tracking_number, fields


# The model's fields an import fills, with the validators each runs.
MODEL_FIELDS = {name: Shipment._meta.get_field(name) for name in STANDARD_COLUMNS.values()}


def check_model_rules(brand: Brand, tracking_number: str, fields: dict) -> None:
    """The model's own validators, as the API's create applies them
    (``Model.clean_fields`` over the given fields), field by field without
    building a model instance: the import's dearest step per row
    (bench/imports.py)."""
    errors: dict[str, list[str]] = {}
    for name, value in (("tracking_number", tracking_number), *fields.items()):
        model_field = MODEL_FIELDS[name]
        if model_field.blank and value in model_field.empty_values:
            continue
        try:
            model_field.clean(value, None)
        except ValidationError as error:
            errors[COLUMN_OF_FIELD[name]] = error.messages
    if errors:
        raise RowRefused("; ".join(f"{column}: {' '.join(messages)}" for column, messages in errors.items()))


ProgressCallback = Callable[[ImportReport], None]


def import_csv(
    *,
    brand: Brand,
    source: BinaryIO,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    on_progress: ProgressCallback | None = None,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
) -> ImportReport:
    """Import a CSV file of shipments into ``brand`` by the rules of this
    module's docstring, and say what became of each row."""
    header = check_file(source, max_bytes=max_bytes, max_rows=max_rows)
    targets, ignored = columns_for(header, mapping)
    compared = [STANDARD_COLUMNS[t] for t in targets if t is not None and t != "tracking_number"]
    report = ImportReport(dry_run=dry_run, ignored_columns=ignored)
    # Each tracking number met so far, with a fingerprint of its cells, so
    # that one given twice in the file is imported once.
    seen: dict[str, int] = {}
    batch: list[tuple[int, str, dict]] = []

    def flush() -> None:
        _write_batch(brand, batch, compared, seen, report)
        batch.clear()
        if on_progress is not None:
            on_progress(report)

    rows = records(source)
    next(rows)  # the header
    for line, cells in rows:
        report.last_line = line
        if not cells:
            continue
        report.rows += 1
        try:
            tracking_number, fields = row_fields(brand, targets, cells)
        except RowRefused as refused:
            report.refuse(line, _tracking_number_cell(targets, cells), str(refused))
            continue
        batch.append((line, tracking_number, fields))
        if len(batch) >= BATCH:
            flush()
    flush()
    return report


def _tracking_number_cell(targets: Sequence[str | None], cells: Sequence[str]) -> str:
    for target, cell in zip(targets, cells, strict=False):
        if target == "tracking_number":
            return cell.strip()[: bounds.TRACKING_NUMBER_MAX_LENGTH]
    return ""


def _fingerprint(fields: dict, compared: Sequence[str]) -> int:
    return hash(tuple(fields.get(name) for name in compared))


def _write_batch(
    brand: Brand, batch: list[tuple[int, str, dict]], compared: list[str], seen: dict[str, int], report: ImportReport
) -> None:
    if not batch:
        return
    wanted = {tracking_number for _, tracking_number, _ in batch if tracking_number not in seen}
    stored = {
        values["tracking_number"]: _fingerprint(values, compared)
        for values in Shipment.objects.filter(brand=brand, tracking_number__in=wanted).values(
            "tracking_number", *compared
        )
    }
    new: list[dict] = []
    for line, tracking_number, fields in batch:
        fingerprint = _fingerprint(fields, compared)
        known = seen.get(tracking_number, stored.get(tracking_number))
        if known is not None:
            report.unchanged += 1
            if known != fingerprint:
                report.differs(line)
            seen.setdefault(tracking_number, known)
            continue
        seen[tracking_number] = fingerprint
        if report.dry_run:
            report.created += 1
        else:
            # The first promise is kept for the on-time rate, as the API's create keeps it.
            first = fields.get("promised_window_end")
            new.append({"brand_id": brand.pk, "tracking_number": tracking_number, "first_window_end": first, **fields})
    if not new:
        return
    with transaction.atomic():
        inserted = bulk.copy_insert(Shipment, new, timezone.now(), unless_present=("brand", "tracking_number"))
    # Left out by the insert: made meanwhile by someone else (the API,
    # another import), so already there.
    report.created += len(inserted)
    report.unchanged += len(new) - len(inserted)
