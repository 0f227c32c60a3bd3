"""shipments.imports: what a CSV file of shipments becomes, row by row."""

import io
from datetime import UTC, datetime

import pytest
from django.db import connection

from notifications.models import Notification
from shipments import imports
from shipments.models import Alert, Notice, Shipment, StatusChange

HEADER = (
    "tracking_number,order_ref,recipient_name,recipient_phone,recipient_email,"
    "line1,city,postcode,country,window_start,window_end\n"
)
GOOD = (
    "LM1,ORD-1,Ada Lovelace,+447700900123,ada@example.com,1 Example Street,London,SW1A 2AA,gb,"
    "2026-11-26T09:00:00Z,2026-11-26T13:00:00+01:00\n"
)


def csv_file(text: str, *, bom: bool = False) -> io.BytesIO:
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + text.encode())


def run(brand, text: str, **kwargs) -> imports.ImportReport:
    return imports.import_csv(brand=brand, source=csv_file(text), **kwargs)


def refusals(report) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in report.refused]


def test_a_good_row_becomes_a_shipment_as_the_api_would_make_it(brand):
    report = run(brand, HEADER + GOOD)
    assert (report.created, report.unchanged, report.refused_count) == (1, 0, 0)
    shipment = Shipment.objects.get(brand=brand, tracking_number="LM1")
    assert shipment.order_ref == "ORD-1"
    assert shipment.destination_country == "GB"
    assert shipment.destination_line1 == "1 Example Street"
    assert shipment.promised_window_start == datetime(2026, 11, 26, 9, tzinfo=UTC)
    assert shipment.promised_window_end == datetime(2026, 11, 26, 12, tzinfo=UTC)
    # The on-time rate is against the first promise, as for the API's create.
    assert shipment.first_window_end == shipment.promised_window_end
    assert shipment.status == "pending" and shipment.version == 1
    assert len(shipment.public_token) >= 40
    # Nothing announced or queued: no status changed.
    assert not StatusChange.objects.exists() and not Notice.objects.exists()


@pytest.mark.parametrize("bom", [False, True])
def test_utf8_with_or_without_bom(brand, bom):
    report = imports.import_csv(brand=brand, source=csv_file(HEADER + GOOD.replace("Ada", "Zoë"), bom=bom))
    assert report.created == 1
    assert Shipment.objects.get(tracking_number="LM1").recipient_name == "Zoë Lovelace"


def test_reimport_changes_nothing_and_says_so(brand):
    run(brand, HEADER + GOOD)
    before = Shipment.objects.get(tracking_number="LM1")
    report = run(brand, HEADER + GOOD)
    assert (report.created, report.unchanged, report.differing_count) == (0, 1, 0)
    after = Shipment.objects.get(tracking_number="LM1")
    assert (after.pk, after.version, after.updated_at, after.public_token) == (
        before.pk,
        before.version,
        before.updated_at,
        before.public_token,
    )


def test_an_existing_shipment_is_left_as_it_is_and_a_differing_row_is_named(brand, make_shipment):
    make_shipment("LM1", recipient_name="Stored Name")
    report = run(brand, HEADER + GOOD)
    assert (report.created, report.unchanged, report.differing) == (0, 1, [2])
    assert Shipment.objects.get(tracking_number="LM1").recipient_name == "Stored Name"


def test_the_same_tracking_number_twice_in_a_file_is_made_once(brand):
    report = run(brand, HEADER + GOOD + GOOD.replace("Ada", "Bob"))
    assert (report.created, report.unchanged, report.differing) == (1, 1, [3])
    assert Shipment.objects.filter(tracking_number="LM1").count() == 1


def test_another_brands_tracking_number_is_no_obstacle(brand, other_brand, make_shipment):
    make_shipment("LM1", for_brand=other_brand)
    assert run(brand, HEADER + GOOD).created == 1
    assert Shipment.objects.filter(tracking_number="LM1").count() == 2


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",ORD,,,,,,,,,", "tracking_number is empty."),
        ("LM 2,,,,,,,,,,", "tracking_number: at most 64"),
        ("L" * 65 + ",,,,,,,,,,", "tracking_number: at most 64"),
        ("LM2,,,07700900123,,,,,,,", "recipient_phone: Use the international form"),
        ("LM2,,,,not-an-email,,,,,,", "recipient_email: Enter a valid email address."),
        ("LM2,,,,,,,,GBR,,", "country: Ensure this value has at most 2 characters"),
        ("LM2,,,,,,,,,2026-11-26T09:00:00,2026-11-26T13:00:00Z", "window_start: needs a time zone offset"),
        ("LM2,,,,,,,,,tomorrow,2026-11-26T13:00:00Z", "window_start: 'tomorrow' is not an ISO 8601"),
        ("LM2,,,,,,,,,1999-12-31T23:00:00Z,2026-11-26T13:00:00Z", "window_start: must be between 2000 and 2100"),
        ("LM2,,,,,,,,,2026-11-26T09:00:00Z,", "window_start and window_end go together"),
        ("LM2,,,,,,,,,2026-11-26T13:00:00Z,2026-11-26T12:59:59Z", "window_end: The window must end after it starts."),
        ("LM2,,,,,,,,,,,extra", "The row has 12 cells; the header has 11."),
    ],
)
def test_each_refused_row_is_named_by_its_line_and_the_good_ones_import(brand, row, reason):
    report = run(brand, HEADER + GOOD + row + "\n" + GOOD.replace("LM1", "LM3"))
    assert [line for line, _ in refusals(report)] == [3]
    assert refusals(report)[0][1].startswith(reason), refusals(report)
    assert report.created == 2
    assert set(Shipment.objects.values_list("tracking_number", flat=True)) == {"LM1", "LM3"}


def test_a_window_ending_as_it_starts_is_accepted(brand):
    report = run(brand, HEADER + "LM2,,,,,,,,,2026-11-26T13:00:00Z,2026-11-26T13:00:00Z\n")
    assert (report.created, report.refused_count) == (1, 0)


def test_line_numbers_count_quoted_newlines(brand):
    multiline = 'LM2,ORD,"Ada\nLovelace",,,"1 Example\nStreet\nBack door",,,,,\n'
    bad = "LM3,,,07700,,,,,,,\n"
    report = run(brand, HEADER + multiline + bad + "\n" + bad.replace("LM3", "LM4"))
    # Header line 1, the good row on lines 2 to 5 (three quoted newlines), the
    # bad one on 6, a blank line 7, the next bad one on 8.
    assert [line for line, _ in refusals(report)] == [6, 8]
    assert Shipment.objects.get(tracking_number="LM2").destination_line1 == "1 Example\nStreet\nBack door"


def test_crlf_line_endings_count_one_line_each(brand):
    text = (HEADER + GOOD + "LM3,,,07700,,,,,,,\n").replace("\n", "\r\n")
    assert [line for line, _ in refusals(run(brand, text))] == [3]


def test_mapping_reads_other_headers(brand):
    text = "Parcel,Order No,Phone\nLM9,ORD-9,+447700900123\n"
    report = run(brand, text, mapping=imports.parse_mapping(["Parcel=tracking_number", "Order No=order_ref"]))
    assert report.created == 1 and report.ignored_columns == ["Phone"]
    shipment = Shipment.objects.get(tracking_number="LM9")
    assert (shipment.order_ref, shipment.recipient_phone) == ("ORD-9", "")


def test_a_mapping_wins_over_a_standard_header_of_the_same_name(brand):
    report = run(brand, "tracking_number,Ref,order_ref\nLM1,a,b\n", mapping={"Ref": "order_ref"})
    assert report.ignored_columns == ["order_ref"]
    assert Shipment.objects.get(tracking_number="LM1").order_ref == "a"


def test_standard_headers_are_matched_whatever_their_case_and_spaces(brand):
    assert run(brand, " Tracking_Number , CITY\nLM9,Paris\n").created == 1
    assert Shipment.objects.get(tracking_number="LM9").destination_city == "Paris"


@pytest.mark.parametrize(
    ("text", "mapping", "message"),
    [
        ("order_ref\nORD\n", [], "no tracking_number column"),
        ("Parcel\nLM1\n", ["Parcel=tracking_nummer"], "Cannot map to 'tracking_nummer'"),
        ("tracking_number\nLM1\n", ["Parcel=order_ref"], "does not have"),
        ("tracking_number,tracking_number\nLM1,LM2\n", [], "Two columns"),
        ("", [], "empty"),
        ("\n\n", [], "header"),
    ],
)
def test_a_file_without_a_usable_header_is_refused_whole(brand, text, mapping, message):
    with pytest.raises(imports.FileRefused, match=message):
        run(brand, text, mapping=imports.parse_mapping(mapping))
    assert not Shipment.objects.exists()


def test_a_bad_mapping_argument_is_refused():
    with pytest.raises(imports.FileRefused, match="HEADER=COLUMN"):
        imports.parse_mapping(["order_ref"])


def test_binary_files_are_refused_whole(brand):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)
    with pytest.raises(imports.FileRefused, match="not a CSV file"):
        imports.import_csv(brand=brand, source=io.BytesIO(png))


def test_a_nul_byte_late_in_the_file_is_refused_before_anything_is_written(brand):
    with pytest.raises(imports.FileRefused, match="binary"):
        run(brand, HEADER + GOOD * 3 + "LM9,\x00,,,,,,,,,\n")
    assert not Shipment.objects.exists()


def test_text_that_is_not_utf8_is_refused_with_its_line(brand):
    latin1 = (HEADER + GOOD + "LM2,,Zoë,,,,,,,,\n").encode("latin-1")
    with pytest.raises(imports.FileRefused, match=r"Line 3: the file is not UTF-8"):
        imports.import_csv(brand=brand, source=io.BytesIO(latin1))
    assert not Shipment.objects.exists()


def test_size_limit_just_over_is_refused_and_just_under_is_read(brand):
    text = HEADER + GOOD
    size = len(text.encode())
    assert run(brand, text, max_bytes=size).created == 1
    with pytest.raises(imports.FileRefused, match=f"{size:,} bytes; the limit is {size - 1:,}"):
        run(brand, text, max_bytes=size - 1)


def test_row_limit_just_over_is_refused_whole_and_just_under_is_read(brand):
    rows = "".join(GOOD.replace("LM1", f"LM{n}") for n in range(3))
    with pytest.raises(imports.FileRefused, match="more than 2 rows"):
        run(brand, HEADER + rows, max_rows=2)
    assert not Shipment.objects.exists()
    assert run(brand, HEADER + rows, max_rows=3).created == 3


def test_the_default_limits_are_the_admins():
    assert (imports.MAX_BYTES, imports.MAX_ROWS) == (50 * 1024 * 1024, 200_000)


def test_an_unterminated_quote_is_read_as_csv_reads_it_without_a_500(brand):
    report = run(brand, HEADER + 'LM2,"ORD\n')
    assert report.created == 1


def test_a_dry_run_writes_nothing_and_takes_no_sequence_value(brand, make_shipment):
    first = make_shipment("LM0")
    rows = "".join(GOOD.replace("LM1", f"LM{n}") for n in range(1, 4))
    counts = (StatusChange.objects.count(), Notice.objects.count(), Notification.objects.count(), Alert.objects.count())
    report = run(brand, HEADER + rows + "LM9,,,0770,,,,,,,\n", dry_run=True)
    assert (report.created, report.unchanged, report.refused_count) == (3, 0, 1)
    assert list(Shipment.objects.values_list("tracking_number", flat=True)) == ["LM0"]
    assert counts == (
        StatusChange.objects.count(),
        Notice.objects.count(),
        Notification.objects.count(),
        Alert.objects.count(),
    )
    # The next shipment takes the id right after the one made before the
    # dry run: no value was drawn from the id sequence.
    assert make_shipment("LM-after").pk == first.pk + 1


def test_a_dry_run_counts_existing_ones_as_unchanged(brand, make_shipment):
    make_shipment("LM1")
    report = run(brand, HEADER + GOOD + GOOD.replace("LM1", "LM2"), dry_run=True)
    assert (report.created, report.unchanged) == (1, 1)


def test_batches_write_every_row_once_across_their_edges(brand, monkeypatch):
    monkeypatch.setattr(imports, "BATCH", 2)
    progress = []
    rows = "".join(GOOD.replace("LM1", f"LM{n}") for n in range(5)) + GOOD.replace("LM1", "LM0")
    report = run(brand, HEADER + rows, on_progress=lambda r: progress.append((r.created, r.unchanged)))
    assert (report.created, report.unchanged) == (5, 1)
    assert Shipment.objects.count() == 5
    assert progress == [(2, 0), (4, 0), (5, 1), (5, 1)]


def test_a_row_made_meanwhile_by_someone_else_counts_as_unchanged(brand, make_shipment, monkeypatch):
    real = imports._write_batch

    def race(brand_, batch, compared, seen, report):
        make_shipment("LM1")  # the API wins the race after the look-up
        return real(brand_, batch, compared, seen, report)

    monkeypatch.setattr(imports.Shipment.objects, "filter", _empty_lookup(imports.Shipment.objects.filter))
    monkeypatch.setattr(imports, "_write_batch", race)
    report = run(brand, HEADER + GOOD)
    assert (report.created, report.unchanged) == (0, 1)
    assert Shipment.objects.filter(tracking_number="LM1").count() == 1


def _empty_lookup(real_filter):
    def filter_(*args, **kwargs):
        if "brand" in kwargs and "tracking_number__in" in kwargs:
            return real_filter(pk__in=[])
        return real_filter(*args, **kwargs)

    return filter_


def test_the_report_lists_at_most_max_listed_refusals_but_counts_all(brand, monkeypatch):
    monkeypatch.setattr(imports, "MAX_LISTED", 2)
    report = run(brand, HEADER + ",,,,,,,,,,\n" * 5)
    assert report.refused_count == 5 and len(report.refused) == 2


def test_on_postgresql_the_insert_is_one_statement_per_batch(brand, django_assert_max_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("the batch insert is written out on PostgreSQL")
    rows = "".join(GOOD.replace("LM1", f"LM{n}") for n in range(50))
    # Savepoint, look-up; the copy's table made, the copy, the insert, the
    # table dropped; release.
    with django_assert_max_num_queries(7):
        assert run(brand, HEADER + rows).created == 50


def test_a_cell_past_csvs_field_limit_is_refused_whole_with_its_line(brand):
    with pytest.raises(imports.FileRefused, match=r"Line 3: not readable as CSV"):
        run(brand, HEADER + GOOD + "LM2," + "x" * 200_000 + ",,,,,,,,,\n")
    assert not Shipment.objects.exists()
